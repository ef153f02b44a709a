#!/usr/bin/env bash
# bench/cores.sh: does a job use every core of its silo, and the speed on AVX2 as on AVX-512 (issue 19).
# The seed job embedded (`trainer train --workers W`, data parallel, 3000 steps) for W = 1 and 2, each
# GEMM backend (TRAINER_BLAS=managed|openblas), on this CPU as it is and as an AVX2 CPU
# (DOTNET_EnableAVX512=0, OPENBLAS_CORETYPE=Haswell), with the numpy seed loop under both OpenBLAS
# kernels for scale; optionally a second trainer build (BENCH_BEFORE) in the same interleaved rounds.
#
#   bash bench/cores.sh                                             # this tree's build
#   BENCH_BEFORE=/path/to/other/trainer bash bench/cores.sh         # and another build, row for row
#
# Environment:
#   BENCH_REPEATS=3   repetitions per row (rounds interleave every row; medians are printed)
#   BENCH_STEPS=3000  steps of the seed job
#   BENCH_BEFORE=     a trainer executable to measure beside this tree's (e.g. main's)
# NOTE: .NET 10 reads DOTNET_EnableAVX512 (DOTNET_EnableAVX512F is ignored): with it 0,
# Vector512.IsHardwareAccelerated is false and the JIT has the 16 ymm registers of an AVX2 CPU.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPEATS=${BENCH_REPEATS:-3}
STEPS=${BENCH_STEPS:-3000}
WORK=$ROOT/artifacts/bench/cores-$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$WORK/results.jsonl
mkdir -p "$WORK"
log() { echo "[bench/cores] $*" >&2; }

dotnet build -c Release src/Trainer.Client >"$WORK/build.log" 2>&1 || { log "build failed, see $WORK/build.log"; exit 1; }
declare -A BUILDS=([after]=$ROOT/src/Trainer.Client/bin/Release/net10.0/trainer)
[ -n "${BENCH_BEFORE:-}" ] && BUILDS[before]=$BENCH_BEFORE
AVX2=(DOTNET_EnableAVX512=0 OPENBLAS_CORETYPE=Haswell)

# record NAME SECONDS: one JSON line with the load average, as every figure needs on a shared machine.
record() { printf '{"row":"%s","seconds":%s,"load":"%s"}\n' "$1" "${2:-null}" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"; }

for ((rep = 1; rep <= REPEATS; rep++)); do
  log "round $rep of $REPEATS"
  for cpu in avx512 avx2; do
    envs=(); [ "$cpu" = avx2 ] && envs=("${AVX2[@]}")
    core=$([ "$cpu" = avx2 ] && echo Haswell || echo default)
    s=$(env -u OPENBLAS_CORETYPE "${envs[@]}" /usr/bin/python3 bench/references/numpy_seed.py --steps "$STEPS" 2>/dev/null \
        | grep -oE '"seconds": ?[0-9.]+' | grep -oE '[0-9.]+$')
    record "numpy loop, OpenBLAS $core kernel" "$s"
    for build in "${!BUILDS[@]}"; do
      for blas in managed openblas; do
        for w in 1 2; do
          s=$(env "${envs[@]}" TRAINER_BLAS=$blas "${BUILDS[$build]}" train --workers "$w" --steps "$STEPS" --json 2>/dev/null \
              | grep '"completed"' | grep -oE '"seconds":[0-9.]+' | cut -d: -f2)
          record "$cpu | $build | $blas | W=$w" "$s"
        done
      done
    done
  done
done

/usr/bin/python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["row"], []).append(r)
print("| row | median s | runs (s) | load averages (1 min) |")
print("|---|---:|---|---|")
for name, rs in rows.items():
    secs = [r["seconds"] for r in rs if r["seconds"] is not None]
    med = f"{statistics.median(secs):.2f}" if secs else "failed"
    print(f"| {name.replace(' | ', ', ')} | {med} | {', '.join(f'{s:.2f}' for s in secs)} | {', '.join(r['load'].split()[0] for r in rs)} |")
PY
log "raw rows: $RESULTS"
