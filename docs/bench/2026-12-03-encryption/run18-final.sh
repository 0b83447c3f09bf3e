#!/usr/bin/env bash
# The same comparison on the stop's final code: before = 3b2ec44 (/tmp/medchain-before),
# final = 3aed8d0 (/tmp/medchain-final: sealed names, erasure with secure_delete, key
# rotation, bounded proposals on top of the encryption commit), interleaved, 3 runs each.
set -u
cd "$(dirname "$0")"
for run in ${RUNS:-1 2 3}; do
  for mode in http128 rate2000 one; do
    for bin in before final; do
      case $mode in
        http128) args="--clients 128";;
        rate2000) args="--rate 2000";;
        one) args="--clients 1";;
      esac
      out=$mode-$bin-$run; [ $bin = before ] && out=$mode-before2-$run
      timeout 120 /tmp/medchain-$bin bench --duration 10 $args --json $out.json > $out.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
