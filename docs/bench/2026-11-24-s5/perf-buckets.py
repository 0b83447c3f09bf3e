"""Put each sample of a system-wide perf profile in one bucket by its stack.

Usage (during a `medchain bench` run):
    perf record -a --call-graph dwarf,32768 -F 149 -o all.data -- sleep 4
    perf script -i all.data -F pid,comm,ip,sym > all.txt
    python3 perf-buckets.py all.txt BENCH_PID

BENCH_PID is the `medchain bench` process (its HTTP clients get their own bucket).
The first rule whose pattern appears in a sample's stack (and its sub-pattern, if
any) names the bucket; the order of the rules matters.
"""
import collections
import re
import sys

RULES = [
    ("writer: fsync", "writer_loop", "fsync"),
    ("writer: sqlite/other", "writer_loop", None),
    ("checkpointer", "checkpointer", None),
    ("verify: signatures", "verify_message", "ed25519|curve25519"),
    ("verify: other", "verify_message", None),
    ("http: session extract", "Session as axum", None),
    ("http: add_record handler", "add_record", None),
    ("blocking read", r"state..AppState..read|take_reader|medchain_records::query", None),
    ("http: hyper/axum other", "hyper::|axum::", None),
    ("core", "core_loop", None),
    ("gateway", "gateway", None),
    ("transport send", "peer_writer", None),
    ("transport recv other", "handle_connection", None),
]


def samples(path):
    cur = None
    for line in open(path):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            cur = {"hdr": line.strip(), "frames": []}
        elif cur is not None:
            cur["frames"].append(line.strip())
    if cur:
        yield cur


def main():
    path, bench_pid = sys.argv[1], sys.argv[2]
    buckets = collections.Counter()
    n = 0
    for s in samples(path):
        n += 1
        hdr, stack = s["hdr"], " ".join(s["frames"])
        if "swapper" in hdr:
            buckets["idle"] += 1
        elif re.search(r"\b" + bench_pid + r"\b", hdr):
            buckets["bench client"] += 1
        else:
            for name, pat, sub in RULES:
                if re.search(pat, stack) and (sub is None or re.search(sub, stack)):
                    buckets[name] += 1
                    break
            else:
                buckets["other: " + hdr.split()[0]] += 1
    for k, v in buckets.most_common():
        print(f"{100 * v / n:5.1f}%  {k}")
    print(n, "samples")


if __name__ == "__main__":
    main()
