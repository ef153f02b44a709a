#!/usr/bin/env bash
# bench/run.sh: the trainer against its references (numpy loop, PyTorch, PyTorch DDP) in ONE run.
#
#   bash bench/run.sh                      # from anywhere; writes docs/benchmarks.md
#
# What it does:
#   1. installs the Debian packages it needs when missing (python3-numpy python3-torch
#      libopenblas0-pthread, and dataset-fashion-mnist for workload F; apt-get as root);
#   2. builds the trainer (dotnet build -c Release src/Trainer.Client);
#   3. runs every row BENCH_REPEATS times, repetitions interleaved so drift hits all rows alike:
#      seed job (1000-100-10, batch 64, 3000 steps, float64) for numpy, torch, torch DDP gloo
#      2 processes, trainer embedded W=1/W=2, autograd engine, float32, 2 silo processes;
#      job 3 (784-1024-1024-10, batch 8192) for numpy/torch float64/float32, DDP, trainer W=1/W=2,
#      float32, 2 silos, and W=2 with --optimizer adam; the seed job with its first layer split
#      (--parallel split) embedded and on 2 silos; a 50M-parameter model (5000-10000-10, batch 8)
#      embedded, and on 2 silos with SGD and with Adam, each on a cluster of its own whose silos'
#      peak RSS is read when the job ends; workload F (issue 16: Fashion-MNIST, 784-256-128-10 relu,
#      biases, cross-entropy, Adam 1e-3, batch 128, BENCH_FASHION_EPOCHS epochs, then the test set)
#      for PyTorch float32/float64 (2 threads) and float32 on 1 thread, and the trainer embedded W=2 float64/float32, W=1,
#      W=2 with SGD (Adam's cost per step), and on 2 silos W=2 float64/float32; its compute-bound variant (batch 1024,
#      BENCH_FASHION_WIDE_EPOCHS epochs) embedded W=2, W=1, and W=1 pinned to one core. Every trainer row names its --parallel mode (the CLI's
#      default was auto, which split the seed job, before it became data), so a row measures the
#      same thing in every run, except the two "default" rows (seed job W=2, embedded and on
#      2 silos), which give no --parallel to measure whatever `trainer train` does by default;
#   4. prints medians and ratios (steps/s over the numpy loop of the same job, same run) and
#      writes docs/benchmarks.md with the machine, the table, the targets (met or not) and this
#      command. Every run's raw result records the CPU model, its wall time and any peak RSS.
# A row whose command fails is reported as "failed: <first error line>"; the run goes on.
#
# Environment:
#   BENCH_REPEATS=3        repetitions per row (medians are taken over them)
#   BENCH_SEED_STEPS=3000  steps of the seed job; 0 skips its rows (the memory rows are BENCH_MEMORY's)
#   BENCH_JOB3_STEPS=10    steps of job 3 (each is heavy: ~90 GFLOP); 0 skips job 3
#   BENCH_BIG_STEPS=4      steps of the 50M-parameter job (5000-10000-10, batch 8); 0 skips it
#   BENCH_FASHION_EPOCHS=10  epochs of workload F; 0 skips it
#   BENCH_FASHION_DATA=/usr/share/datasets/fashion-mnist  its IDX files (Debian package dataset-fashion-mnist)
#   BENCH_FASHION_WIDE_EPOCHS=10  epochs of workload F's compute-bound variant (batch 1024): W=2 against W=1, and
#                          against W=1 pinned to one core (taskset), the issue's scaling figure; 0 skips it.
#                          Workload F's own 10 epochs: a shorter run weighs each job's fixed start (~0.35 s
#                          here, the same for W=1 and W=2) on the shorter W=2 job and understates its scaling.
#   BENCH_MEMORY=1         1 measures the silos' peak RSS early, midway and late in a 30k-step job (target 4); 0 skips it
#   BENCH_MEMORY_PASSES=3  passes of that measure per mode (data, split); the table quotes each and their medians
#   BENCH_STATUS_CALLS=0   N > 0 also times `trainer status` N times per client and phase on a 3-silo
#                          cluster of its own, idle and with two jobs training, silos at cluster.sh's
#                          default nice (bench/status_latency.py, issue 17); its table is appended
#   BENCH_MICRO=0          1 also runs the BenchmarkDotNet micro-benchmarks (bench/Trainer.Bench)
#   BENCH_TIMEOUT=900      seconds before one run is killed and reported as failed
#   BENCH_TRAINER=path     trainer executable (default: the Release build of src/Trainer.Client)
#   BENCH_OUT=path         markdown written at the end (default docs/benchmarks.md)
#   TRAINER_SILO_NICE=0    the silos' nice value (cluster.sh's default, 10, gives a user's commands the
#                          CPU first; the rows compare silos with references at nice 0)
#   TRAINER_BASE_SILO_PORT, TRAINER_BASE_GATEWAY_PORT, TRAINER_CLUSTER_DIR: passed to
#                          deploy/local/cluster.sh (default 11111, 30000, .cluster), e.g. to run
#                          beside a cluster that already uses those ports
#   BENCH_REFERENCE_CORETYPE=  an OpenBLAS kernel for the references (e.g. Haswell, to emulate an AVX2 CPU
#                          with DOTNET_EnableAVX512=0 OPENBLAS_CORETYPE=Haswell for the trainer; issue 19)
# NOTE: the references run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (in their command
# only) unless BENCH_REFERENCE_CORETYPE names a kernel; the trainer runs in the environment as given.
# The kernel OpenBLAS picked is in the table.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPEATS=${BENCH_REPEATS:-3}
SEED_STEPS=${BENCH_SEED_STEPS:-3000}
JOB3_STEPS=${BENCH_JOB3_STEPS:-10}
FASHION_EPOCHS=${BENCH_FASHION_EPOCHS:-10}
FASHION_WIDE_EPOCHS=${BENCH_FASHION_WIDE_EPOCHS:-10}
FASHION_DATA=${BENCH_FASHION_DATA:-/usr/share/datasets/fashion-mnist}
TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
PY=/usr/bin/python3                       # Debian's python, where python3-numpy/torch live
REFS=$ROOT/bench/references
WORK=$ROOT/artifacts/bench/$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$WORK/results.jsonl
mkdir -p "$WORK"
export TRAINER_SILO_NICE=${TRAINER_SILO_NICE:-0}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STATUS_CALLS=${BENCH_STATUS_CALLS:-0}
COMMAND="${DOTNET_EnableAVX512:+DOTNET_EnableAVX512=$DOTNET_EnableAVX512 }${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE }${BENCH_REFERENCE_CORETYPE:+BENCH_REFERENCE_CORETYPE=$BENCH_REFERENCE_CORETYPE }${BENCH_TRAINER:+BENCH_TRAINER=$BENCH_TRAINER }BENCH_REPEATS=$REPEATS BENCH_SEED_STEPS=$SEED_STEPS BENCH_JOB3_STEPS=$JOB3_STEPS BENCH_BIG_STEPS=${BENCH_BIG_STEPS:-4} BENCH_FASHION_EPOCHS=$FASHION_EPOCHS BENCH_FASHION_WIDE_EPOCHS=$FASHION_WIDE_EPOCHS BENCH_MEMORY=${BENCH_MEMORY:-1} BENCH_STATUS_CALLS=$STATUS_CALLS BENCH_MICRO=${BENCH_MICRO:-0} bash bench/run.sh"
# Job 3's learning rate: at the seed's 1e-5 a batch of 8192 summed losses diverges to inf within
# a few steps; 1e-8 keeps every row finite (so none times inf/NaN arithmetic) and comparable.
JOB3="--model 784-1024-1024-10 --batch 8192 --steps $JOB3_STEPS --lr 1e-8"
# 50M parameters (5000-10000-10): does it train, and at what step time, embedded and across silos.
BIG_STEPS=${BENCH_BIG_STEPS:-4}
BIG="--model 5000-10000-10 --batch 8 --steps $BIG_STEPS --checkpoint-every 0"
# Workload F (issue 16), the command a user types for it; samples/s = 60000 x epochs / seconds.
FASHION="--data idx:$FASHION_DATA --model 784-256-128-10 --activation relu --bias --loss ce --optimizer adam --lr 1e-3 --batch 128 --epochs $FASHION_EPOCHS"
FASHION_SAMPLES=$((60000 * FASHION_EPOCHS))
# Workload F's compute-bound variant (issue 16: W=2 over W=1 at batch 1024). Since a lone worker's
# products use every core of its silo, W=1 unpinned runs on the same 2 cores as W=2; the pinned W=1
# row (one core: its GEMMs then get one thread) is what "a second worker with a core of its own" adds.
FASHION_WIDE="--data idx:$FASHION_DATA --model 784-256-128-10 --activation relu --bias --loss ce --optimizer adam --lr 1e-3 --batch 1024 --epochs $FASHION_WIDE_EPOCHS"
# SGD at the same step count for Adam's cost per step: 0.05 trains this model (Adam's 1e-3 barely moves it).
FASHION_SGD="${FASHION/--optimizer adam --lr 1e-3/--optimizer sgd --lr 0.05}"
# The 2-silo clusters' gateways, where deploy/local/cluster.sh puts them (TRAINER_BASE_GATEWAY_PORT moves them).
GATEWAY_PORT=${TRAINER_BASE_GATEWAY_PORT:-30000}
GATEWAYS="127.0.0.1:$GATEWAY_PORT,127.0.0.1:$((GATEWAY_PORT + 1))"

log() { echo "[bench] $*" >&2; }

install_packages() {
  local need=() p
  local wanted=(python3-numpy python3-torch libopenblas0-pthread)
  [ $((FASHION_EPOCHS + FASHION_WIDE_EPOCHS)) -gt 0 ] && [ "$FASHION_DATA" = /usr/share/datasets/fashion-mnist ] && wanted+=(dataset-fashion-mnist)
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then log "missing ${need[*]} and not root: their rows will fail"; return; fi
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 \
    || log "apt-get install failed: their rows will fail"
}

build_trainer() {
  TRAINER=${BENCH_TRAINER:-$ROOT/src/Trainer.Client/bin/Release/net10.0/trainer}
  [ -n "${BENCH_TRAINER:-}" ] && return
  if [ ! -d src/Trainer.Client ]; then TRAINER_MISSING="src/Trainer.Client does not exist"; return; fi
  log "building src/Trainer.Client (Release)"
  if ! dotnet build -c Release src/Trainer.Client >"$WORK/build.log" 2>&1; then
    TRAINER_MISSING="build of src/Trainer.Client failed: $(grep -m1 -E 'error' "$WORK/build.log" | cut -c1-160)"
  fi
}

# A process's peak resident memory so far (VmHWM), in MB.
vm_peak() { awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/"$1"/status 2>/dev/null; }

# Silo pids whose peak RSS run_row reads when its command ends (set by fresh_cluster_row).
RSS_PIDS=()
# Training samples a row goes through, recorded for its samples/s (set by fashion_rows, or as the
# prefix of one run_row call: bash keeps such an assignment for that function call only).
ROW_SAMPLES=

# run_row NAME JOB REP COMMAND...: runs one repetition of one row and appends its result, with
# the command's wall time and, when RSS_PIDS is set, each of those silos' peak RSS.
run_row() {
  local name=$1 job=$2 rep=$3; shift 3
  local slug; slug=$(echo "$name" | tr -c 'A-Za-z0-9=\n' '_')
  local out=$WORK/$slug.$rep.out err=$WORK/$slug.$rep.err start=$EPOCHREALTIME
  timeout "$TIMEOUT" "$@" >"$out" 2>"$err"
  local code=$? wall p rss=()
  wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
  for p in "${RSS_PIDS[@]}"; do rss+=("$(vm_peak "$p")"); done
  $PY bench/summarize.py record "$name" "$job" "$rep" "$code" "$out" "$err" --wall-seconds "$wall" \
    ${rss[@]+--peak-rss-mb "$(IFS=,; echo "${rss[*]}")"} ${ROW_SAMPLES:+--samples "$ROW_SAMPLES"} >>"$RESULTS"
  log "rep $rep  $name: $(tail -n1 "$RESULTS" | $PY -c 'import json,sys; r=json.load(sys.stdin); print("%.3f s" % r["result"]["seconds"] if r["result"] else "failed: %s" % r["failed"])')"
}

# unavailable NAME JOB REP WHY: records a row that cannot run here.
unavailable() {
  local err=$WORK/unavailable.err
  echo "not available: $4" >"$err"
  $PY bench/summarize.py record "$1" "$2" "$3" 127 /dev/null "$err" >>"$RESULTS"
}

# Commands as arrays (timeout cannot run shell functions). The references run with the two
# OpenBLAS tuning variables unset in their own command only.
PY_RUN=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${BENCH_REFERENCE_CORETYPE:+OPENBLAS_CORETYPE=$BENCH_REFERENCE_CORETYPE} "$PY")
set_trainer_command() {
  if [ -n "${TRAINER_MISSING:-}" ]; then TRAINER_RUN=(sh -c 'echo "$0" >&2; exit 1' "$TRAINER_MISSING")
  else TRAINER_RUN=("$TRAINER" train --json); fi
}

# float32 rows run only once the CLI has --precision (issue 5, target 5); until then they say so.
float32_row() {
  local name=$1 job=$2 rep=$3; shift 3
  if "${TRAINER_RUN[@]:0:${#TRAINER_RUN[@]}-2}" train --help 2>/dev/null | grep -q -- '--precision'; then
    run_row "$name" "$job" "$rep" "${TRAINER_RUN[@]}" --precision float32 "$@"
  else
    unavailable "$name" "$job" "$rep" "not implemented: trainer has no --precision option yet"
  fi
}

# Workload F, embedded and PyTorch: every row records its samples (60000 x epochs) for samples/s.
# Ratios are taken against the PyTorch float32 row.
fashion_rows() {
  local rep=$1 p
  ROW_SAMPLES=$FASHION_SAMPLES
  for p in float32 float64; do
    run_row "torch fashion $p" fashion "$rep" "${PY_RUN[@]}" "$REFS/torch_fashion.py" --data "$FASHION_DATA" --epochs "$FASHION_EPOCHS" --precision $p
  done
  # The issue's peer has 2 threads; with one, torch's OpenMP threads stop spinning against OpenBLAS's (notes.md).
  run_row "torch fashion float32 1 thread" fashion "$rep" "${PY_RUN[@]}" "$REFS/torch_fashion.py" --data "$FASHION_DATA" --epochs "$FASHION_EPOCHS" --threads 1
  # The SGD row right after the Adam row: Adam's cost is a few percent, and this VM's speed drifts
  # by more than that within a minute, so the pair the target compares runs back to back.
  run_row "trainer fashion W=2" fashion "$rep" "${TRAINER_RUN[@]}" --workers 2 $FASHION --parallel data
  run_row "trainer fashion W=2 sgd" fashion "$rep" "${TRAINER_RUN[@]}" --workers 2 $FASHION_SGD --parallel data
  float32_row "trainer fashion W=2 float32" fashion "$rep" --workers 2 $FASHION --parallel data
  run_row "trainer fashion W=1" fashion "$rep" "${TRAINER_RUN[@]}" --workers 1 $FASHION --parallel data
  ROW_SAMPLES=
}

# Workload F at batch 1024, embedded: W=2, W=1, and W=1 on one core (the process's affinity, which
# .NET's processor count and so the silo's compute threads and GEMM threads follow).
fashion_wide_rows() {
  local rep=$1
  ROW_SAMPLES=$((60000 * FASHION_WIDE_EPOCHS))
  # The target's pair (W=2, W=1 on one core) back to back, as above.
  run_row "trainer fashion b1024 W=2" fashion "$rep" "${TRAINER_RUN[@]}" --workers 2 $FASHION_WIDE --parallel data
  run_row "trainer fashion b1024 W=1 one core" fashion "$rep" taskset -c 0 "${TRAINER_RUN[@]}" --workers 1 $FASHION_WIDE --parallel data
  run_row "trainer fashion b1024 W=1" fashion "$rep" "${TRAINER_RUN[@]}" --workers 1 $FASHION_WIDE --parallel data
  ROW_SAMPLES=
}

# shared_cluster_unavailable REP WHY: records the rows of the shared 2-silo cluster as unavailable.
shared_cluster_unavailable() {
  [ "$SEED_STEPS" -gt 0 ] && unavailable "trainer 2 silos W=2" seed "$1" "$2"
  [ "$JOB3_STEPS" -gt 0 ] && unavailable "trainer job3 2 silos W=2" job3 "$1" "$2"
  [ "$FASHION_EPOCHS" -gt 0 ] && unavailable "trainer fashion 2 silos W=2" fashion "$1" "$2"
  [ "$FASHION_EPOCHS" -gt 0 ] && unavailable "trainer fashion 2 silos W=2 float32" fashion "$1" "$2"
  return 0
}

cluster_rows() {
  local rep=$1
  if [ ! -x deploy/local/cluster.sh ] && [ ! -f deploy/local/cluster.sh ]; then
    shared_cluster_unavailable "$rep" "deploy/local/cluster.sh does not exist"
    return
  fi
  # One cluster for the seed, job 3 and workload F rows (started only when one of them runs).
  if [ "$SEED_STEPS" -gt 0 ] || [ "$JOB3_STEPS" -gt 0 ] || [ "$FASHION_EPOCHS" -gt 0 ]; then
    if [ -n "${TRAINER_MISSING:-}" ] || ! bash deploy/local/cluster.sh start 2 >"$WORK/cluster.$rep.log" 2>&1; then
      local why=${TRAINER_MISSING:-"cluster.sh start 2 failed: $(grep -m1 -iE 'error|fail' "$WORK/cluster.$rep.log" | cut -c1-160)"}
      shared_cluster_unavailable "$rep" "$why"
      bash deploy/local/cluster.sh stop >/dev/null 2>&1
      return
    fi
    local gw="--gateway $GATEWAYS"
    if [ "$SEED_STEPS" -gt 0 ]; then
      # A fresh cluster's first job also pays the silos' first-call JIT and warm-up (about a second on this job):
      # a row of its own, so the rows after it measure the steady state a running cluster gives.
      run_row "trainer 2 silos W=2 first job" seed "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 --steps "$SEED_STEPS"
      run_row "trainer 2 silos W=2" seed "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 --steps "$SEED_STEPS" --parallel data
      run_row "trainer 2 silos W=2 float32" seed "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 --steps "$SEED_STEPS" --precision float32 --parallel data
      run_row "trainer 2 silos W=2 split" seed "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 --steps "$SEED_STEPS" --parallel split
      run_row "trainer 2 silos W=2 default" seed "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 --steps "$SEED_STEPS"
    fi
    [ "$JOB3_STEPS" -gt 0 ] && run_row "trainer job3 2 silos W=2" job3 "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 $JOB3 --parallel data
    [ "$JOB3_STEPS" -gt 0 ] && run_row "trainer job3 2 silos W=2 float32" job3 "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 $JOB3 --precision float32 --parallel data
    [ "$FASHION_EPOCHS" -gt 0 ] && ROW_SAMPLES=$FASHION_SAMPLES run_row "trainer fashion 2 silos W=2" fashion "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 $FASHION --parallel data
    # In the peer's precision: the issue lets the trainer say which it ran (float64 or float32).
    [ "$FASHION_EPOCHS" -gt 0 ] && ROW_SAMPLES=$FASHION_SAMPLES run_row "trainer fashion 2 silos W=2 float32" fashion "$rep" "${TRAINER_RUN[@]}" $gw --workers 2 $FASHION --parallel data --precision float32
    bash deploy/local/cluster.sh stop >>"$WORK/cluster.$rep.log" 2>&1
  fi
  # Adam's parameter server holds two moments beside the parameters (3 x 400 MB here): each
  # optimizer on a fresh cluster, so each silo's peak RSS is this job's (start-up included).
  [ "$BIG_STEPS" -gt 0 ] && fresh_cluster_row "trainer 50M params 2 silos W=2" big "$rep" --workers 2 $BIG --parallel data
  [ "$BIG_STEPS" -gt 0 ] && fresh_cluster_row "trainer 50M params 2 silos W=2 adam" big "$rep" --workers 2 $BIG --parallel data --optimizer adam
}

# fresh_cluster_row NAME JOB REP JOB-OPTIONS...: one row on a 2-silo cluster started for it, with
# each silo's peak RSS read when the job ends, before the silos stop.
fresh_cluster_row() {
  local name=$1 job=$2 rep=$3; shift 3
  local dir=${TRAINER_CLUSTER_DIR:-$ROOT/.cluster} f
  if ! bash deploy/local/cluster.sh start 2 >>"$WORK/cluster.$rep.log" 2>&1; then
    unavailable "$name" "$job" "$rep" "cluster.sh start 2 failed"
    bash deploy/local/cluster.sh stop >/dev/null 2>&1
    return
  fi
  RSS_PIDS=()
  for f in "$dir"/silo-*.pid; do RSS_PIDS+=("$(cat "$f")"); done
  run_row "$name" "$job" "$rep" "${TRAINER_RUN[@]}" --gateway "$GATEWAYS" "$@"
  RSS_PIDS=()
  bash deploy/local/cluster.sh stop >>"$WORK/cluster.$rep.log" 2>&1
}

# Target 4: a silo's peak resident memory on the seed job, early, midway and late in one 30k-step job (flat?).
# memory_pass MODE: a fresh 2-silo cluster runs one 30000-step seed job W=2 in MODE. Per silo it
# prints the peak RSS over steps 1-3000 (VmHWM when the job reports step 3000, start-up included),
# over steps 13501-16500 and over the last 3000 steps (VmHWM reset through /proc/PID/clear_refs
# when the job reports steps 13500 and 27000), and over the whole job; fails when the cluster does
# not start. The middle reading tells a plateau after warm-up from a steady climb.
# NOTE: two different jobs (3k, then 30k) would measure the silo's second job against its first:
# the GC's budgets grow over a silo's first jobs, and a finished job's record stays in memory storage.
memory_pass() {
  local dir=${TRAINER_CLUSTER_DIR:-$ROOT/.cluster}
  bash deploy/local/cluster.sh start 2 >>"$WORK/memory-cluster.log" 2>&1 || return 1
  local pids=() f
  for f in "$dir"/silo-*.pid; do pids+=("$(cat "$f")"); done
  # grep passes on only the four lines the readings need: a shell loop over every line (one per
  # step) takes CPU beside the silos, and a probe that forked per line fell so far behind the job
  # that its "step N" readings were taken after the job had ended.
  "${TRAINER_RUN[@]}" --gateway "$GATEWAYS" --workers 2 --steps 30000 --parallel "$1" 2>&1 \
    | grep --line-buffered -E '"step":(3000|13500|16500|27000),' | {
    local -A early first mid second
    local line p late whole out="" reset=yes
    while IFS= read -r line; do
      case $line in
        *'"step":3000,'*) for p in "${pids[@]}"; do early[$p]=$(vm_peak "$p"); done ;;
        *'"step":13500,'*) for p in "${pids[@]}"; do first[$p]=$(vm_peak "$p"); echo 5 2>/dev/null >/proc/"$p"/clear_refs || reset=no; done ;;
        *'"step":16500,'*) for p in "${pids[@]}"; do mid[$p]=$(vm_peak "$p"); done ;;
        *'"step":27000,'*) for p in "${pids[@]}"; do second[$p]=$(vm_peak "$p"); echo 5 2>/dev/null >/proc/"$p"/clear_refs || reset=no; done ;;
      esac
    done
    for p in "${pids[@]}"; do
      late=$(vm_peak "$p")
      if [ -z "${early[$p]:-}" ] || [ -z "${mid[$p]:-}" ] || [ -z "${second[$p]:-}" ] || [ -z "$late" ]; then out+="[no reading: the job did not report steps 3000, 13500, 16500 and 27000] "; continue; fi
      [ "$reset" = yes ] || { out+="[steps 1-3000: ${early[$p]} MB; whole job: $late MB; /proc/PID/clear_refs refused, so no later peaks] "; continue; }
      whole=$(printf '%s\n' "${first[$p]}" "${second[$p]}" "$late" | sort -n | tail -n1)
      out+="[steps 1-3000: ${early[$p]} MB, steps 13501-16500: ${mid[$p]} MB, steps 27001-30000: $late MB ($(awk -v a="${early[$p]}" -v b="$late" 'BEGIN {printf "%+.0f%%", 100 * (b - a) / a}')), whole job: $whole MB] "
    done
    echo "$out"
  }
  bash deploy/local/cluster.sh stop >>"$WORK/memory-cluster.log" 2>&1
}

memory_rows() {
  [ "${BENCH_MEMORY:-1}" = 1 ] && [ -z "${TRAINER_MISSING:-}" ] || return 0
  local mode pass reading
  : >"$WORK/memory.txt"
  # Both modes of the seed job: data (the CLI's default) and the first layer split.
  for mode in data split; do
    for pass in $(seq 1 "${BENCH_MEMORY_PASSES:-3}"); do
      if ! reading=$(memory_pass "$mode"); then echo "memory: cluster did not start" >"$WORK/memory.txt"; return 0; fi
      echo "silo peak RSS, 2 silos, one 30000-step seed job W=2 $mode, pass $pass (per silo): $reading" >>"$WORK/memory.txt"
    done
  done
  # Medians over the passes, per mode and silo (silo-0, silo-1): late peak against early peak, and the peaks.
  awk '
    /one 30000-step seed job/ {
      mode = ($0 ~ / split, pass /) ? "split" : "data"; n = 0; line = $0
      while (match(line, /steps 1-3000: [0-9]+ MB, steps 13501-16500: [0-9]+ MB, steps 27001-30000: [0-9]+ MB \([-+][0-9]+%\)/)) {
        part = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
        gsub(/steps [0-9]+-[0-9]+: /, "", part); gsub(/[^-+0-9]/, " ", part); split(part, f, " "); key = mode " silo-" n++
        early[key] = early[key] " " f[1]; late[key] = late[key] " " f[3]; growth[key] = growth[key] " " f[4] + 0; shown[key] = shown[key] " " f[4] "%"
      }
    }
    function median(list,   v, k, i, j, t) {
      k = split(list, v, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
      for (m = 0; m < 2; m++) for (i = 0; i < 8; i++) { k = (m ? "split" : "data") " silo-" i; if (!(k in growth)) continue; printf "silo peak RSS, median over the passes, %s: steps 1-3000 %s MB, steps 27001-30000 %s MB, late against early %+.1f%% (passes:%s)\n", k, median(early[k]), median(late[k]), median(growth[k]), shown[k] }
    }' "$WORK/memory.txt" >"$WORK/memory-medians.txt"
  cat "$WORK/memory-medians.txt" >>"$WORK/memory.txt"
}

machine_info() {
  echo "cores (nproc): $(nproc)"
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') (avx512f: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no))"
  echo "load average (1, 5, 15 min) at the start / the end of the run: $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M')"
  echo "dotnet --version: $(dotnet --version 2>/dev/null || echo none)"
  echo "OpenBLAS: $(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null || echo none)"
  echo "numpy's OpenBLAS kernel: $($PY -c 'import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)["result"]
    if r and "blas_core" in r: print(r["blas_config"]); break' "$RESULTS")"
  echo "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE seen by the trainer: ${OPENBLAS_CORETYPE:-unset} / ${OPENBLAS_L2_SIZE:-unset}; by the references: ${BENCH_REFERENCE_CORETYPE:-unset} / unset"
  echo "DOTNET_EnableAVX512 seen by the trainer: ${DOTNET_EnableAVX512:-unset} (0: .NET runs as on an AVX2 CPU)"
  [ -f "$WORK/memory.txt" ] && cat "$WORK/memory.txt"
  echo "python: $($PY -c 'import numpy, torch, sys; print("%s, numpy %s, torch %s" % (sys.version.split()[0], numpy.__version__, torch.__version__))' 2>&1 | tail -n1)"
}

install_packages
build_trainer
set_trainer_command
for rep in $(seq 1 "$REPEATS"); do
  if [ "$SEED_STEPS" -gt 0 ]; then
    run_row "numpy loop" seed "$rep" "${PY_RUN[@]}" "$REFS/numpy_seed.py" --steps "$SEED_STEPS"
    # The same loop with glibc keeping freed memory: by default each 800 KB temporary (a gradient, lr·g) is
    # above malloc's mmap threshold, so it is mapped, page-faulted in and unmapped every step; on some VMs
    # that costs more than the arithmetic (docs/performance.md). The trainer's GC never returns them.
    run_row "numpy loop, malloc keeps memory" seed "$rep" env MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728 "${PY_RUN[@]}" "$REFS/numpy_seed.py" --steps "$SEED_STEPS"
    run_row "torch 1 process" seed "$rep" "${PY_RUN[@]}" "$REFS/torch_seed.py" --steps "$SEED_STEPS"
    run_row "torch 1 process autograd" seed "$rep" "${PY_RUN[@]}" "$REFS/torch_seed.py" --autograd --steps "$SEED_STEPS"
    run_row "torch DDP gloo 2 processes" seed "$rep" "${PY_RUN[@]}" "$REFS/torch_ddp_seed.py" --world 2 --steps "$SEED_STEPS"
    run_row "trainer embedded W=1" seed "$rep" "${TRAINER_RUN[@]}" --workers 1 --steps "$SEED_STEPS" --parallel data
    run_row "trainer embedded W=2" seed "$rep" "${TRAINER_RUN[@]}" --workers 2 --steps "$SEED_STEPS" --parallel data
    run_row "trainer embedded W=2 split" seed "$rep" "${TRAINER_RUN[@]}" --workers 2 --steps "$SEED_STEPS" --parallel split
    run_row "trainer embedded W=2 default" seed "$rep" "${TRAINER_RUN[@]}" --workers 2 --steps "$SEED_STEPS"
    run_row "trainer embedded W=2 autograd" seed "$rep" "${TRAINER_RUN[@]}" --workers 2 --engine autograd --steps "$SEED_STEPS"
    run_row "trainer embedded W=1 managed GEMM" seed "$rep" env TRAINER_BLAS=managed "${TRAINER_RUN[@]}" --workers 1 --steps "$SEED_STEPS" --parallel data
    run_row "trainer embedded W=2 managed GEMM" seed "$rep" env TRAINER_BLAS=managed "${TRAINER_RUN[@]}" --workers 2 --steps "$SEED_STEPS" --parallel data
    run_row "trainer embedded W=2 autograd managed GEMM" seed "$rep" env TRAINER_BLAS=managed "${TRAINER_RUN[@]}" --workers 2 --engine autograd --steps "$SEED_STEPS"
    float32_row "trainer embedded W=2 float32" seed "$rep" --workers 2 --steps "$SEED_STEPS" --parallel data
  fi
  if [ "$JOB3_STEPS" -gt 0 ]; then
    for p in float64 float32; do
      run_row "numpy loop job3 $p" job3 "$rep" "${PY_RUN[@]}" "$REFS/numpy_seed.py" $JOB3 --precision $p
      run_row "torch 1 process job3 $p" job3 "$rep" "${PY_RUN[@]}" "$REFS/torch_seed.py" $JOB3 --precision $p
    done
    run_row "torch DDP job3 float64" job3 "$rep" "${PY_RUN[@]}" "$REFS/torch_ddp_seed.py" --world 2 $JOB3
    run_row "trainer job3 W=1" job3 "$rep" "${TRAINER_RUN[@]}" --workers 1 $JOB3 --parallel data
    run_row "trainer job3 W=2" job3 "$rep" "${TRAINER_RUN[@]}" --workers 2 $JOB3 --parallel data
    run_row "trainer job3 W=2 adam" job3 "$rep" "${TRAINER_RUN[@]}" --workers 2 $JOB3 --parallel data --optimizer adam
    float32_row "trainer job3 W=2 float32" job3 "$rep" --workers 2 $JOB3 --parallel data
  fi
  [ "$BIG_STEPS" -gt 0 ] && run_row "trainer 50M params embedded W=2" big "$rep" "${TRAINER_RUN[@]}" --workers 2 $BIG --parallel data
  [ "$FASHION_EPOCHS" -gt 0 ] && fashion_rows "$rep"
  [ "$FASHION_WIDE_EPOCHS" -gt 0 ] && fashion_wide_rows "$rep"
  cluster_rows "$rep"
done

memory_rows

# `trainer status` end to end (issue 17): its own cluster and report section; a failure is logged, not fatal.
SECTIONS=()
if [ "$STATUS_CALLS" -gt 0 ]; then
  log "trainer status: $STATUS_CALLS calls per client and phase, idle and with two jobs training"
  # The silos at cluster.sh's default nice: what a user's `status` meets, not the rows' nice 0.
  if env -u TRAINER_SILO_NICE $PY bench/status_latency.py --calls "$STATUS_CALLS" --out "$WORK/status.md" --results "$WORK/status.jsonl" >"$WORK/status.log" 2>&1; then
    SECTIONS=("$WORK/status.md")
  else
    log "status_latency.py failed, see $WORK/status.log"
  fi
fi

MICRO=()
if [ "${BENCH_MICRO:-0}" = 1 ]; then
  log "BenchmarkDotNet micro-benchmarks"
  dotnet run -c Release --project bench/Trainer.Bench -- --filter '*' --artifacts "$WORK/bdn" >"$WORK/bdn.log" 2>&1 \
    || log "micro-benchmarks failed, see $WORK/bdn.log"
  MICRO=("$WORK"/bdn/results/*-report-github.md)
fi

machine_info >"$WORK/machine.txt"
mkdir -p "$(dirname "$OUT")"
$PY bench/summarize.py report "$RESULTS" --machine "$WORK/machine.txt" --command "$COMMAND" \
  --notes bench/notes.md --out "$OUT" ${MICRO[@]+--micro "${MICRO[@]}"} ${SECTIONS[@]+--section "${SECTIONS[@]}"}
log "raw results: $RESULTS; report: $OUT"
