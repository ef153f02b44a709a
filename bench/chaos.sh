#!/usr/bin/env bash
# bench/chaos.sh: jobs on a 3-silo cluster with Redis membership and storage while silos are
# SIGKILLed and started again, then the whole cluster at once; every job must end with the bits of
# its undisturbed run. The longer version of tests/Trainer.Process.Tests/ChaosTests.cs.
#
#   bash bench/chaos.sh            # ~10 minutes on 2 cores; prints the figures at the end
#
# What it does:
#   1. starts redis-server on a free port and 3 silos (deploy/local/cluster.sh, --clustering redis);
#   2. keeps up to CHAOS_JOBS jobs running for CHAOS_SECONDS (jobs that end are replaced, 2 per kill),
#      specs cycling through data-parallel SGD/Adam/momentum/Nesterov and split SGD/Adam, seed = job
#      number; meanwhile, CHAOS_KILL_EVERY seconds after each restart, SIGKILLs a random silo
#      (seeded: CHAOS_SEED) and starts it again (cluster.sh restart);
#   3. waits for every job, then SIGKILLs all 3 silos mid-job (one more job running) and starts them
#      again, timing how long until all are ready and until `trainer list` answers;
#   4. runs every job again undisturbed (CHAOS_JOBS at a time) and compares: state completed, final
#      weights byte for byte (w*.npy), and that `trainer list` still names every job;
#   5. prints: jobs x kills survived (each kill counted once per job running when it landed), silo
#      restarts survived, the whole-cluster restart's time to ready, the silos' peak RSS, jobs lost.
#
# Environment:
#   CHAOS_JOBS=10          jobs kept running at once
#   CHAOS_SECONDS=180      how long silos are killed
#   CHAOS_KILL_EVERY=5     seconds between a silo being ready again and the next kill
#   CHAOS_STEPS=5000       steps per job
#   CHAOS_SEED=1           seed of the choice of silos
#   CHAOS_DIR=/tmp/trainer-chaos   logs, weights, the report (chaos.log)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${CHAOS_JOBS:-10}
SECONDS_OF_CHAOS=${CHAOS_SECONDS:-180}
KILL_EVERY=${CHAOS_KILL_EVERY:-5}
STEPS=${CHAOS_STEPS:-5000}
RANDOM=${CHAOS_SEED:-1}
DIR=${CHAOS_DIR:-/tmp/trainer-chaos}
rm -rf "$DIR"
mkdir -p "$DIR/weights" "$DIR/reference"

say() { echo "$(date +%H:%M:%S) $*" | tee -a "$DIR/chaos.log"; }
die() { say "chaos.sh: error: $*"; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
bash "$ROOT/deploy/local/cluster.sh" build >/dev/null || die "the build failed"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$DIR/redis.log" 2>&1 &
REDIS_PID=$!
export TRAINER_CLUSTER_DIR="$DIR/cluster" TRAINER_BASE_DASHBOARD_PORT=0
export TRAINER_BASE_SILO_PORT=${TRAINER_BASE_SILO_PORT:-24111} TRAINER_BASE_GATEWAY_PORT=${TRAINER_BASE_GATEWAY_PORT:-34111}
export TRAINER_SILO_ARGS="--blas-threads 1 --clustering redis --redis 127.0.0.1:$REDIS_PORT --cluster-id chaos"
cluster() { bash "$ROOT/deploy/local/cluster.sh" "$@"; }
# SIGKILL of silo $1, returning once its process is gone.
kill_silo() {
  local pid
  pid=$(cat "$TRAINER_CLUSTER_DIR/silo-$1.pid")
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}
trainer() { dotnet "$ROOT/src/Trainer.Client/bin/Release/net10.0/trainer.dll" "$@" --gateway "redis://127.0.0.1:$REDIS_PORT" --cluster-id chaos; }
cleanup() { [[ -n "${SAMPLER:-}" ]] && kill "$SAMPLER" 2>/dev/null; cluster stop >/dev/null 2>&1; kill "$REDIS_PID" 2>/dev/null; }
trap cleanup EXIT
cluster start 3 >/dev/null || die "the cluster did not start"

# The silos' peak resident memory, sampled every second (whichever processes the pid files name).
( peak=0
  while :; do
    for f in "$TRAINER_CLUSTER_DIR"/silo-*.pid; do
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$f" 2>/dev/null)/status" 2>/dev/null)
      [[ -n "$kb" ]] && ((kb > peak)) && peak=$kb && echo "$peak" >"$DIR/peak-rss-kb"
    done
    sleep 1
  done ) &
SAMPLER=$!

# Job n's spec (without --steps): the kinds cycle, the seed is n.
spec() {
  local n=$1
  case $((n % 6)) in
    0) echo "--model 1000-100-10 --workers 3 --parallel data --optimizer sgd" ;;
    1) echo "--model 1000-100-10 --workers 3 --parallel data --optimizer adam --lr 1e-4" ;;
    2) echo "--model 1000-100-10 --workers 3 --parallel split --optimizer sgd" ;;
    3) echo "--model 500-50-10 --workers 2 --parallel data --optimizer momentum" ;;
    4) echo "--model 2000-200-10 --workers 3 --parallel split --optimizer adam --lr 1e-4" ;;
    5) echo "--model 1000-100-10 --workers 2 --parallel data --optimizer nesterov" ;;
  esac
  echo "--seed $n --checkpoint-every 50 --checkpoint-min-seconds 0"
}

declare -A JOB_ID JOB_DONE
submitted=0
submit() {
  local n=$submitted id
  # shellcheck disable=SC2046 # the spec's words are options
  id=$(trainer submit $(spec "$n") --steps "$STEPS" 2>>"$DIR/client.log") \
    || id=$(trainer submit $(spec "$n") --steps "$STEPS" 2>>"$DIR/client.log") || die "submitting job $n failed (twice)"
  JOB_ID[$n]=$id
  submitted=$((submitted + 1))
}

# Every job's state, "id state steps" per line.
states() { trainer list --json 2>>"$DIR/client.log" | /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l); print(e["job"], e["state"], e["steps"])'; }
running_jobs() { awk '$2 == "running"' "$DIR/states" | wc -l; }

for ((i = 0; i < JOBS; i++)); do submit; done
say "$JOBS jobs of $STEPS steps submitted; killing silos for $SECONDS_OF_CHAOS s"

kills=0 restarts=0 job_kills=0
start=$SECONDS
while ((SECONDS - start < SECONDS_OF_CHAOS)); do
  states >"$DIR/states"
  # Keep JOBS running: replace the ones that ended, at most 2 per kill (each client takes seconds to start).
  for ((i = $(running_jobs); i < JOBS && i < $(running_jobs) + 2; i++)); do submit; done
  states >"$DIR/states"
  silo=$((RANDOM % 3))
  running=$(running_jobs)
  kill_silo "$silo"
  t0=$SECONDS
  cluster restart "$silo" >>"$DIR/cluster.log" 2>&1 || die "silo $silo did not come back (see $TRAINER_CLUSTER_DIR/silo-$silo.log)"
  kills=$((kills + 1)) restarts=$((restarts + 1)) job_kills=$((job_kills + running))
  say "kill $kills: silo $silo with $running jobs running; ready again after $((SECONDS - t0)) s"
  sleep "$KILL_EVERY"
done

say "waiting for the $submitted jobs to end"
deadline=$((SECONDS + 900))
while :; do
  states >"$DIR/states"
  (($(running_jobs) == 0)) && break
  ((SECONDS > deadline)) && die "jobs still running 15 minutes after the kills stopped: $(awk '$2 == "running" {print $1}' "$DIR/states" | tr '\n' ' ')"
  sleep 2
done

# The whole cluster at once, mid-job: one more job, killed once it has a checkpoint past its start.
submit
last=$((submitted - 1))
until trainer status "${JOB_ID[$last]}" --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; sys.exit(0 if (json.load(sys.stdin).get("checkpoint_step") or 0) >= 100 else 1)'; do sleep 1; done
for i in 0 1 2; do kill_silo "$i"; done
t0=$(date +%s.%N)
cluster start 3 >>"$DIR/cluster.log" 2>&1 || die "the cluster did not start again"
t1=$(date +%s.%N)
states >"$DIR/states" || die "list failed after the whole-cluster restart"
t2=$(date +%s.%N)
restarts=$((restarts + 3))
whole=$(/usr/bin/python3 -c "print(f'{$t1 - $t0:.1f} s to ready, {$t2 - $t0:.1f} s until list answered')")
say "whole cluster killed and started again: $whole"
trainer watch "${JOB_ID[$last]}" >/dev/null 2>>"$DIR/client.log" || die "job ${JOB_ID[$last]} did not complete after the whole-cluster restart"

# Every job against its undisturbed run.
states >"$DIR/states"
lost=0
for ((n = 0; n < submitted; n++)); do
  id=${JOB_ID[$n]}
  line=$(grep "^$id " "$DIR/states") || { say "job $n ($id) is not listed"; lost=$((lost + 1)); continue; }
  [[ "$(echo "$line" | awk '{print $2}')" == completed ]] || { say "job $n ($id): $line"; lost=$((lost + 1)); continue; }
  trainer result "$id" --save "npy:$DIR/weights/$n" >/dev/null 2>>"$DIR/client.log" || { say "job $n ($id): no result"; lost=$((lost + 1)); }
done
say "running the $submitted jobs again undisturbed, 3 at a time"
# A client that could not connect (several starting at once on 2 shared cores can each miss the
# client's 30 s) submitted nothing: it is run again.
reference() {
  local n=$1 attempt
  for attempt in 1 2 3; do
    # shellcheck disable=SC2046
    trainer train $(spec "$n") --steps "$STEPS" --save "npy:$DIR/reference/$n" >/dev/null 2>>"$DIR/client.log" && return 0
  done
  return 1
}
pids=()
for ((n = 0; n < submitted; n++)); do
  reference "$n" &
  pids+=($!)
  sleep 3
  # NOTE: wait for these pids only: a bare `wait` would also wait for the RSS sampler, which never ends.
  if ((${#pids[@]} == 3)); then wait "${pids[@]}"; pids=(); fi
done
((${#pids[@]} == 0)) || wait "${pids[@]}"
for ((n = 0; n < submitted; n++)); do
  for w in "$DIR/reference/$n"/w*.npy; do
    cmp -s "$w" "$DIR/weights/$n/$(basename "$w")" || { say "job $n (${JOB_ID[$n]}): $(basename "$w") differs from the undisturbed run's"; lost=$((lost + 1)); break; }
  done
done

peak_mb=$(( $(cat "$DIR/peak-rss-kb" 2>/dev/null || echo 0) / 1024 ))
say "CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores"
say "jobs: $submitted of $STEPS steps ($JOBS at a time); kills: $kills single silos over $SECONDS_OF_CHAOS s; jobs x kills survived: $job_kills"
say "silo restarts survived: $restarts ($kills single, 3 in the whole-cluster restart: $whole)"
say "peak silo RSS: $peak_mb MB; jobs lost or different from their undisturbed run: $lost"
((lost == 0))
