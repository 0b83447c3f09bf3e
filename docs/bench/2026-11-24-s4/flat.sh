#!/bin/bash
# Flatness: commit latency and a patient lookup on an empty chain and at 1,000,000
# committed 1 KB transactions; RSS per replica.
set -u
M=/work/main/target/release/medchain
D=/tmp/flat; rm -rf $D
H=16700; P=18700
$M init --replicas 4 --dir $D --demo --http-port $H --p2p-port $P > /dev/null
for i in 0 1 2 3; do setsid $M node --config $D/node$i.toml > $D/n$i.log 2>&1 & done
sleep 3
T=http://127.0.0.1:$H,http://127.0.0.1:$((H+1)),http://127.0.0.1:$((H+2)),http://127.0.0.1:$((H+3))
measure() {
  $M bench --target $T --clients 1 --duration 10 --warmup 1 --json /tmp/flat-$1-c1.json | grep -E "throughput|latency"
  python3 "$(dirname "$0")"/lookup.py $H | sed "s/^/$1 /"
  ps -o rss=,args= -C medchain | grep "node --config $D" | awk '{printf "%d MB ", $1/1024} END {print ""}'
  curl -s 127.0.0.1:$H/metrics | grep -E "^medchain_height |^medchain_committed_records_total"
}
echo "== empty"; measure empty
START=$(date +%s)
$M load --config $D/node0.toml --records 15625 --batch 64 --concurrency 16 --payload-bytes 1024 --timeout-s 900 | python3 -c "import json,sys; d=json.load(sys.stdin); print('load: acked', d['acked'], 'requests,', round(d['records_per_s']), 'records/s')"
echo "fill took $(( $(date +%s) - START )) s"
sleep 5
echo "== 1M"; measure full
du -sh $D/node0
pkill -f "node --config $D/"
