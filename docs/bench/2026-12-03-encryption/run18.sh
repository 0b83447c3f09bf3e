#!/usr/bin/env bash
# Interleaved before/after runs for issue 18 (record content encrypted before consensus):
# 3 runs each of 3 modes. before = 3b2ec44 (content in clear), after = the encryption
# commit (binaries copied to /tmp/medchain-before and /tmp/medchain-after).
set -u
cd "$(dirname "$0")"
for run in ${RUNS:-1 2 3}; do
  for mode in http128 rate2000 one; do
    for bin in before after; do
      case $mode in
        http128) args="--clients 128";;
        rate2000) args="--rate 2000";;
        one) args="--clients 1";;
      esac
      timeout 120 /tmp/medchain-$bin bench --duration 10 $args --json $mode-$bin-$run.json > $mode-$bin-$run.log 2>&1
      echo "$mode $bin $run exit=$?"
    done
  done
done
