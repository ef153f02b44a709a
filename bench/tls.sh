#!/usr/bin/env bash
# bench/tls.sh: what TLS costs the split step. The seed job with its first layer split
# (--parallel split, W=2) on 2 silo processes, with and without TLS (a cluster certificate made
# here with openssl), repetitions interleaved so drift hits both rows alike. Each row's time is the
# job's own training time (`trainer train --json`, as bench/run.sh records it); the split's workers
# exchange their activation blocks over the link port every step, TLS-encrypted in the TLS rows.
#
#   bash bench/tls.sh                      # prints the medians; raw rows in artifacts/bench/tls-<time>/
#
# Environment:
#   BENCH_REPEATS=5        repetitions per row
#   BENCH_SEED_STEPS=3000  steps of the seed job
#   TRAINER_BASE_SILO_PORT, TRAINER_BASE_GATEWAY_PORT, TRAINER_CLUSTER_DIR: passed to
#                          deploy/local/cluster.sh (default 11111, 30000, .cluster)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPEATS=${BENCH_REPEATS:-5}
STEPS=${BENCH_SEED_STEPS:-3000}
PY=/usr/bin/python3
WORK=$ROOT/artifacts/bench/tls-$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$WORK/results.jsonl
GATEWAY_PORT=${TRAINER_BASE_GATEWAY_PORT:-30000}
GATEWAYS="127.0.0.1:$GATEWAY_PORT,127.0.0.1:$((GATEWAY_PORT + 1))"
mkdir -p "$WORK"
export TRAINER_BASE_DASHBOARD_PORT=0 TRAINER_SILO_ARGS="${TRAINER_SILO_ARGS:---blas-threads 1}"

log() { echo "[bench/tls] $*" >&2; }

dotnet build -c Release src/Trainer.Client >"$WORK/build.log" 2>&1 || { log "build failed, see $WORK/build.log"; exit 1; }
TRAINER=$ROOT/src/Trainer.Client/bin/Release/net10.0/trainer
# The cluster's certificate, as docs/operations.md makes one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=trainer-bench" \
  -addext "extendedKeyUsage=serverAuth,clientAuth" -keyout "$WORK/cluster.key" -out "$WORK/cluster.pem" 2>/dev/null \
  || { log "openssl could not make a certificate"; exit 1; }

# row NAME REP CLUSTER-ENV... -- CLIENT-OPTIONS...: a fresh 2-silo cluster, one job, its result recorded.
row() {
  local name=$1 rep=$2; shift 2
  local -a cluster_env=() client=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cluster_env+=("$1"); shift; done
  shift
  client=("$@")
  if ! env "${cluster_env[@]}" bash deploy/local/cluster.sh start 2 >>"$WORK/cluster.log" 2>&1; then
    log "cluster.sh start 2 failed, see $WORK/cluster.log"
    bash deploy/local/cluster.sh stop >/dev/null 2>&1
    return
  fi
  local out=$WORK/${name// /_}.$rep.out err=$WORK/${name// /_}.$rep.err
  timeout 900 "$TRAINER" train --json --gateway "$GATEWAYS" --workers 2 --steps "$STEPS" --parallel split "${client[@]}" >"$out" 2>"$err"
  local code=$?
  bash deploy/local/cluster.sh stop >>"$WORK/cluster.log" 2>&1
  $PY bench/summarize.py record "$name" seed "$rep" "$code" "$out" "$err" >>"$RESULTS"
  log "rep $rep  $name: $(tail -n1 "$RESULTS" | $PY -c 'import json,sys; r=json.load(sys.stdin); print("%.3f s" % r["result"]["seconds"] if r["result"] else "failed: %s" % r["failed"])')"
}

for rep in $(seq 1 "$REPEATS"); do
  row "trainer 2 silos W=2 split" "$rep" TRAINER_TLS_CERT= --
  row "trainer 2 silos W=2 split TLS" "$rep" TRAINER_TLS_CERT="$WORK/cluster.pem" TRAINER_TLS_KEY="$WORK/cluster.key" -- \
    --tls-cert "$WORK/cluster.pem" --tls-key "$WORK/cluster.key"
done

$PY - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"]:
        rows.setdefault(r["row"], []).append(r["result"]["seconds"])
cpu = json.loads(open(sys.argv[1]).readline())["cpu"]
print(f"CPU: {cpu}")
for name, times in rows.items():
    print(f"{name}: median {statistics.median(times):.3f} s over {len(times)} ({', '.join(f'{t:.2f}' for t in times)})")
plain, tls = rows.get("trainer 2 silos W=2 split"), rows.get("trainer 2 silos W=2 split TLS")
if plain and tls:
    print(f"TLS against plain: {statistics.median(tls) / statistics.median(plain) - 1:+.1%} on the median")
EOF
