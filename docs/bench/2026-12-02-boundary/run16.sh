#!/usr/bin/env bash
# Interleaved before/after runs for issue 16 (organisation boundary): 3 runs each of
# HTTP closed loop (128 clients), open loop at 2,000/s, and one client.
set -u
cd /work/bench/r16
for run in 1 2 3; do
  for mode in http128 rate2000 one; do
    for bin in before after; do
      case $mode in
        http128) args="--clients 128";;
        rate2000) args="--rate 2000";;
        one) args="--clients 1";;
      esac
      timeout 120 /work/bench/medchain-$bin bench --duration 10 $args --json $mode-$bin-$run.json > $mode-$bin-$run.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
