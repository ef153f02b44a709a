#!/usr/bin/env bash
# Silo memory of workload F's data path: the same job with the data uploaded by the client, and read by
# the silos themselves (--data-on-silos) from the gzipped IDX files and from plain (gunzipped) ones.
# Each run gets a fresh 2-silo cluster; after the job, every silo's peak and current RSS, split into
# anonymous memory (heaps) and file pages (mappings), from /proc/PID/status.
# Usage: bench/silo-memory.sh [steps]   (needs `dotnet build -c Release` and dataset-fashion-mnist)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
steps="${1:-100}"
gz=/usr/share/datasets/fashion-mnist
plain="${TRAINER_PLAIN_IDX:-/tmp/fashion-mnist-plain}"
if [ ! -f "$plain/train-images-idx3-ubyte" ]; then
  mkdir -p "$plain"
  for f in "$gz"/*.gz; do gunzip -c "$f" > "$plain/$(basename "$f" .gz)"; done
fi
export TRAINER_CLUSTER_DIR="$(mktemp -d)" TRAINER_BASE_SILO_PORT=21311 TRAINER_BASE_GATEWAY_PORT=21400 TRAINER_BASE_DASHBOARD_PORT=0
export TRAINER_SILO_ARGS="--blas-threads 1"
job=(--model 784-256-128-10 --activation relu --bias --loss ce --optimizer adam --lr 1e-3 --batch 128 --workers 2 --steps "$steps" --gateway 127.0.0.1:21400,127.0.0.1:21401)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $steps steps of workload F on 2 silo processes"
run() {
  local name="$1"; shift
  "$repo/deploy/local/cluster.sh" start 2 >/dev/null
  dotnet "$repo/src/Trainer.Client/bin/Release/net10.0/trainer.dll" train "${job[@]}" "$@" --json | tail -1 | cut -c1-120
  for i in 0 1; do
    pid=$(cat "$TRAINER_CLUSTER_DIR/silo-$i.pid")
    awk -v n="$name" -v s="$i" '/^(VmHWM|VmRSS|RssAnon|RssFile):/ { v[$1] = int($2 / 1024) } END {
      printf "%-22s silo %s: peak RSS %5d MB, RSS %5d MB (anonymous %5d MB, file pages %4d MB)\n", n, s, v["VmHWM:"], v["VmRSS:"], v["RssAnon:"], v["RssFile:"] }' "/proc/$pid/status"
  done
  "$repo/deploy/local/cluster.sh" stop >/dev/null
}
run uploaded --data "idx:$gz"
run "on silos, .gz" --data "idx:$gz" --data-on-silos
run "on silos, plain" --data "idx:$plain" --data-on-silos
