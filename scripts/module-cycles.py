#!/usr/bin/env python3
"""Lists import cycles between the files of each crate: edges are `crate::a::b` and
`super::x` paths (in `use` lines and inline), resolved to the file that defines the module.
Exits 1 when a cycle exists. Used in CI to keep each crate readable from the bottom up."""
import os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
# Files whose mutual references are allowed: the PBFT replica's impl blocks are split
# over several files of one type (see crates/pbft/src/lib.rs).
ALLOWED = {("pbft", frozenset({"replica", "checkpoint", "view_change", "state_transfer", "durable", "clients", "log"}))}


def modules(src):
    """Map module path (tuple) -> file, for one crate's src/."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main", "mod"):
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(dirpath, f)
    return out


def strip_tests(text):
    """The file without its test module and its comments (doc comments name paths
    they do not depend on)."""
    i = text.find("#[cfg(test)]")
    text = text if i < 0 else text[:i]
    return "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))


def refs(text, me, mods):
    found = set()
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        parts = m.group(2).split("::")[1:]
        base = () if m.group(1) == "crate" else me[:-1]
        path = base + tuple(parts)
        while path and path not in mods:
            path = path[:-1]
        if path and path != me and not (me[: len(path)] == path):
            found.add(path)
    # `use crate::{a, b::c}` groups
    for m in re.finditer(r"use crate::\{([^;]*)\};", text, re.S):
        for name in re.findall(r"(?:^|[,{\s])(\w+)(?=::|\s*[,}]|$)", m.group(1)):
            if (name,) in mods and (name,) != me:
                found.add((name,))
    return found


def cycles_in(crate):
    src = os.path.join(ROOT, crate, "src")
    mods = modules(src)
    graph = {m: refs(strip_tests(open(f).read()), m, mods) for m, f in mods.items()}
    out, seen = [], set()

    def dfs(node, stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cyc = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    out.append(cyc)
            elif len(stack) < 12:
                dfs(nxt, stack + [nxt])

    for m in sorted(graph):
        dfs(m, [m])
    allowed = [a for c, a in ALLOWED if c == crate]
    names = lambda cyc: frozenset("::".join(p) for p in cyc)
    return [c for c in out if not any(names(c) <= a for a in allowed)]


bad = 0
for crate in sorted(os.listdir(ROOT)):
    if not os.path.isdir(os.path.join(ROOT, crate, "src")):
        continue
    for cyc in cycles_in(crate):
        bad += 1
        print(f"{crate}: " + " -> ".join("::".join(p) or "lib" for p in cyc))
print(f"module cycles: {bad}")
sys.exit(1 if bad else 0)
