#!/usr/bin/env bash
# The comparison again on this session's final code: before = 3b2ec44 (/tmp/medchain-before),
# final2 = the head with prescription-code envelopes, sealed break-glass reasons and sealed
# genesis names (/tmp/medchain-final2), interleaved, 3 runs each.
set -u
cd "$(dirname "$0")"
for run in ${RUNS:-1 2 3}; do
  for mode in http128 rate2000 one; do
    for bin in before final2; do
      case $mode in
        http128) args="--clients 128";;
        rate2000) args="--rate 2000";;
        one) args="--clients 1";;
      esac
      out=$mode-$bin-$run; [ $bin = before ] && out=$mode-before3-$run
      timeout 120 /tmp/medchain-$bin bench --duration 10 $args --json $out.json > $out.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
