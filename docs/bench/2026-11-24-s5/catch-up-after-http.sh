#!/bin/bash
# Catch-up after real doctor records over HTTP (not operator markers): start 3 of 4,
# drive HTTP add_record for DUR seconds, sync, start the 4th, poll its height.
set -u
M=/work/main/target/release/medchain
D=/tmp/cuh; rm -rf $D; H=16900; P=18900
$M init --replicas 4 --dir $D --demo --http-port $H --p2p-port $P > /dev/null
for i in 0 1 2; do setsid $M node --config $D/node$i.toml > $D/n$i.log 2>&1 & done
sleep 2
$M bench --target http://127.0.0.1:$H,http://127.0.0.1:$((H+1)),http://127.0.0.1:$((H+2)) --clients 128 --duration ${DUR:-70} --warmup 1 --json /tmp/cuh-load.json | grep -E "throughput|committed"
height() { curl -s --max-time 1 127.0.0.1:$(($H + $1))/metrics | awk '/^medchain_height /{print $2}'; }
recs() { curl -s --max-time 1 127.0.0.1:$(($H + $1))/metrics | awk '/^medchain_committed_records_total /{print $2}'; }
sleep 2; sync
TARGET=$(height 0); R=$(recs 0)
echo "head $TARGET blocks, $R records committed"
T0=$(date +%s.%N)
setsid $M node --config $D/node3.toml > $D/n3.log 2>&1 &
[ -n "${PERF:-}" ] && (perf record -F 999 -g -a -o /tmp/perf-cuh.data -- sleep 6 > /dev/null 2>&1 &)
for t in $(seq 6000); do h=$(height 3); [ -n "$h" ] && [ "$h" -ge "$TARGET" ] && break; sleep 0.02; done
T1=$(date +%s.%N)
python3 -c "t=$T1-$T0; print(f'caught up {$R} records ({$TARGET} blocks) in {t:.2f} s = {$R/t:.0f} records/s (including process start)')"
echo "replica 3 records: $(recs 3)"
pkill -f "node --config $D/"
