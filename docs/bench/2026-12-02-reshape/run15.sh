#!/usr/bin/env bash
# Interleaved before/after runs for issue 15 (reshape): 3 runs each of 3 modes.
set -u
cd /work/bench/r15
for run in 1 2 3; do
  for mode in consensus http128 one; do
    for bin in before reshape; do
      case $mode in
        consensus) args="--mode consensus --clients 16 --batch 64";;
        http128) args="--clients 128";;
        one) args="--clients 1";;
      esac
      timeout 120 /work/bench/medchain-$bin bench --duration 10 $args --json $mode-$bin-$run.json > $mode-$bin-$run.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
