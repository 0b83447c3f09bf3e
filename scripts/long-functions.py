#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (default 70 lines, TigerBeetle's), outside
tests. A function may stay longer when splitting it would hide its logic; it then says
why in a comment containing "long on purpose" just above it."""
import os, re, sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 70
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
START = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?fn\s+(\w+)")

found = []
for dirpath, _, files in os.walk(ROOT):
    if "/tests" in dirpath:
        continue
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        lines = open(path).read().split("\n")
        cut = next((i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
        for i, line in enumerate(lines[:cut]):
            m = START.match(line)
            if not m or line.rstrip().endswith(";"):
                continue
            indent = m.group(1)
            for j in range(i + 1, cut):
                if lines[j] == indent + "}":
                    n = j - i + 1
                    waived = any("long on purpose" in l for l in lines[max(0, i - 6):i])
                    if n > LIMIT and not waived:
                        found.append((n, os.path.relpath(path, ROOT), i + 1, m.group(6)))
                    break
for n, p, line, name in sorted(found, reverse=True):
    print(f"{n:4} lines  {p}:{line}  {name}")
print(f"functions over {LIMIT} lines: {len(found)}")
