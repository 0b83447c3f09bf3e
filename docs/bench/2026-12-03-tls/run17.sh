#!/usr/bin/env bash
# Interleaved before/after runs for issue 17 (TLS on peer and client links): 3 runs each
# of 4 modes. before = the tree before 45bcdac (plaintext links), after = with TLS.
set -u
cd "$(dirname "$0")"  # binaries: /work/bench/medchain-before (ebc82ca) and medchain-after (adcccac)
for run in ${RUNS:-1 2 3}; do
  for mode in consensus http128 http512 one; do
    for bin in before after; do
      case $mode in
        consensus) args="--mode consensus --clients 16 --batch 64";;
        http128) args="--clients 128";;
        http512) args="--clients 512";;
        one) args="--clients 1";;
      esac
      timeout 120 /work/bench/medchain-$bin bench --duration 10 $args --json $mode-$bin-$run.json > $mode-$bin-$run.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
