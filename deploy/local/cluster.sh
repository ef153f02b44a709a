#!/usr/bin/env bash
# A local Trainer cluster: N trainer-silo processes on loopback.
#
#   deploy/local/cluster.sh start N   build if stale, start silos 0..N-1, return once all are ready
#   deploy/local/cluster.sh restart I...  start again the listed silos of the running cluster (dead ones), return once ready
#   deploy/local/cluster.sh status    pid, ports and alive/dead of every silo
#   deploy/local/cluster.sh stop      TERM, bounded wait, then KILL; removes the pid files
#   deploy/local/cluster.sh build     build trainer-silo and trainer (Release) if missing or stale
#
# Silo i listens on silo port BASE_SILO+i and gateway port BASE_GATEWAY+i at its address (127.0.0.1
# unless TRAINER_SILO_ADDRESSES gives it another), and serves its web dashboard on
# http://127.0.0.1:BASE_DASHBOARD+i/ (https:// with TRAINER_TLS_CERT; docs/dashboard.md); silo 0 is the primary.
# NOTE: localhost clustering keeps the membership table on the primary silo, so killing silo 0
# ends the cluster; any other silo may die. With Redis clustering (--clustering redis in
# TRAINER_SILO_ARGS) no silo is special and all start at once: after the whole cluster was killed,
# the membership table still lists every silo as active, and a silo only joins once each of them
# answers or is dead. A restarted silo marks its own old entry dead, so silos that wait for each
# other to be ready would wait for the failure detector instead (docs/operations.md).
#
# Environment:
#   TRAINER_CLUSTER_DIR        logs (silo-<i>.log), pid files (silo-<i>.pid), cluster.env  [<repo>/.cluster]
#   TRAINER_BASE_SILO_PORT     silo port of silo 0                                          [11111]
#   TRAINER_BASE_GATEWAY_PORT  gateway port of silo 0                                       [30000]
#   TRAINER_BASE_DASHBOARD_PORT  web dashboard port of silo 0 (loopback); 0: no dashboards  [8080]
#   TRAINER_SILO_ADDRESSES     comma-separated IP addresses, silo i at entry i (the last entry for the
#                              silos beyond the list): its silo, gateway and link ports listen
#                              there and it advertises it; e.g. 127.0.0.1,127.0.0.2 (Linux routes all
#                              of 127/8 to loopback)                                        [127.0.0.1]
#   TRAINER_TLS_CERT           the cluster's certificate (.pfx, or PEM with TRAINER_TLS_KEY): every silo
#                              runs TLS with it (--tls-cert) and clients must give the same file
#                              (docs/operations.md, "TLS and authentication"); its password, if any,
#                              in TRAINER_TLS_PASSWORD                                      [no TLS]
#   TRAINER_TLS_KEY            the PEM private key of TRAINER_TLS_CERT (--tls-key)          []
#   TRAINER_SILO_ARGS          extra arguments appended to every silo's command line        []
#   TRAINER_START_TIMEOUT      seconds to wait for all silos to log "Silo ready"            [90]
#   TRAINER_STOP_TIMEOUT       seconds to wait after TERM before KILL                       [20]
#   TRAINER_PIN_CORES          1: when there are at least N usable cores, silo i runs on its own
#                              equal, contiguous share of them (taskset); 0: no pinning         [0]
#   TRAINER_SILO_NICE          the silos' nice value, 0-19: a user's commands (`trainer status`) get
#                              the CPU before the training silos; 0: the same priority as they  [10]
#
# NOTE on TRAINER_SILO_NICE: each silo runs in a session of its own (setsid), which Linux's autogroup
# scheduling makes a group with a whole session's share of the CPU: three busy silos take three
# shares against the user's shell's one, and a client starting up gets a fraction of the cores.
# Each silo is niced both as a process and as its session's group (docs/performance.md, "`trainer
# status` while jobs train"). A niced silo still takes every core nobody else wants.
#
# NOTE on pinning (off by default): measured on the 2-core machine, by hand (seed job, 2 silos, split
# first layer, 8 runs each) unpinned 4.6-5.7 s (median 4.95), pinned 3.7-5.2 s (median ~4.1); but in a
# full bench run pinned against one unpinned run an hour earlier: seed data-parallel 0.70x numpy
# (was 0.55x), split 0.79x (was 0.84x), job 3's 2-silo scaling 1.70x (was 1.81x). No clear win, so
# it is opt-in.
#
# Binaries are the default Release outputs: src/Trainer.Silo/bin/Release/net10.0/trainer-silo.dll
# and src/Trainer.Client/bin/Release/net10.0/trainer.dll.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${TRAINER_CLUSTER_DIR:-$repo/.cluster}"
base_silo="${TRAINER_BASE_SILO_PORT:-11111}"
base_gateway="${TRAINER_BASE_GATEWAY_PORT:-30000}"
base_dashboard="${TRAINER_BASE_DASHBOARD_PORT:-8080}"
IFS=, read -r -a addresses <<<"${TRAINER_SILO_ADDRESSES:-127.0.0.1}"
start_timeout="${TRAINER_START_TIMEOUT:-90}"
stop_timeout="${TRAINER_STOP_TIMEOUT:-20}"
silo_nice="${TRAINER_SILO_NICE:-10}"
silo_bin="$repo/src/Trainer.Silo/bin/Release/net10.0"
client_bin="$repo/src/Trainer.Client/bin/Release/net10.0"

die() { echo "cluster.sh: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# True when $1 is missing or older than any source the build reads.
stale() {
  local binary="$1"
  [[ ! -f "$binary" ]] && return 0
  [[ -n "$(find "$repo/src" "$repo/Directory.Build.props" "$repo/Directory.Packages.props" "$repo/global.json" \
      -newer "$binary" -type f -not -path '*/bin/*' -not -path '*/obj/*' -print -quit 2>/dev/null)" ]]
}

build_if_stale() {
  local project="$1" binary="$2"
  if stale "$binary"; then
    echo "building $project (Release)..." >&2
    dotnet build -c Release "$repo/src/$project" -nologo -v:q -m:2 >&2 || die "dotnet build of src/$project failed"
    # NOTE: an up-to-date incremental build may leave the dll's time alone; touch it so it is not rebuilt every time.
    touch "$binary"
  fi
}

pid_of() { cat "$dir/silo-$1.pid" 2>/dev/null || true; }

# Silo i's IP address: entry i of TRAINER_SILO_ADDRESSES, or its last entry.
address_of() {
  local i="$1" n=${#addresses[@]}
  if ((i < n)); then echo "${addresses[$i]}"; else echo "${addresses[$((n - 1))]}"; fi
}

# host:port of an address and a port ([v6]:port for IPv6).
endpoint() { if [[ "$1" == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }

# Alive = the pid exists AND is a trainer-silo (a recycled pid is not our silo).
alive() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qa 'trainer-silo' "/proc/$pid/cmdline" 2>/dev/null
}

silo_indices() {
  local f
  for f in "$dir"/silo-*.pid; do
    [[ -e "$f" ]] || continue
    f="${f##*/silo-}"
    echo "${f%.pid}"
  done | sort -n
}

# The CPUs this script may use, one per line ("Cpus_allowed_list: 0-3,6" -> 0 1 2 3 6).
usable_cpus() {
  local list part
  list="$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status 2>/dev/null)"
  [[ -n "$list" ]] || return 0
  local IFS=,
  for part in $list; do
    if [[ "$part" == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
  done
}

# Silo i of n: its share of the usable CPUs as a taskset list, or nothing (no pinning).
silo_cores() {
  local i="$1" n="$2" share
  [[ "${TRAINER_PIN_CORES:-0}" == 1 ]] && command -v taskset >/dev/null || return 0
  local -a cpus
  mapfile -t cpus < <(usable_cpus)
  (( ${#cpus[@]} >= n )) || return 0
  share=$(( ${#cpus[@]} / n ))
  local IFS=,
  echo "${cpus[*]:$((i * share)):$share}"
}

usable_cpu_count() { usable_cpus | wc -l; }

# An absolute path for a non-empty one (cluster.env keeps the TLS files for `restart`).
tls_path() { [[ -z "$1" ]] || realpath -m "$1"; }

# --tls-cert/--tls-key for every silo, as absolute paths (a silo runs in its output folder).
tls_args() {
  [[ -n "${TRAINER_TLS_CERT:-}" ]] || return 0
  echo --tls-cert
  realpath -m "$TRAINER_TLS_CERT"
  if [[ -n "${TRAINER_TLS_KEY:-}" ]]; then
    echo --tls-key
    realpath -m "$TRAINER_TLS_KEY"
  fi
}

start_silo() {
  local i="$1" n="$2" log="$dir/silo-$1.log" cores
  local -a extra=() pin=() dashboard=() tls=() lower=()
  [[ "$silo_nice" =~ ^[0-9]+$ ]] && ((silo_nice <= 19)) \
    || die "TRAINER_SILO_NICE must be a nice value from 0 (the user's priority) to 19 (the lowest) (got '${silo_nice}')"
  cores="$(silo_cores "$i" "$n")"
  # NOTE: .NET sizes its thread pool and spinning by the CPUs it may use; a silo pinned to one core
  # that believes it has one (measured: 5.0-6.7 s) was slower than not pinning it (4.6-5.7 s), and
  # pinned while counting the machine's cores it ran 3.7-5.2 s (seed job, split, 2 silos, 8 runs each).
  [[ -n "$cores" ]] && pin=(env "DOTNET_PROCESSOR_COUNT=${DOTNET_PROCESSOR_COUNT:-$(usable_cpu_count)}" taskset -c "$cores")
  # shellcheck disable=SC2206 # word splitting of TRAINER_SILO_ARGS is intended
  [[ -n "${TRAINER_SILO_ARGS:-}" ]] && extra=(${TRAINER_SILO_ARGS})
  [[ "$base_dashboard" != 0 ]] && dashboard=(--dashboard-port $((base_dashboard + i)))
  # Niced inside its new session, whose scheduling group (autogroup, where the kernel has it) takes the value too.
  [[ "$silo_nice" != 0 ]] && lower=(sh -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' "$silo_nice")
  keep_previous_log "$log"
  mapfile -t tls < <(tls_args)
  : >"$log"
  [[ -n "$cores" ]] && echo "cluster.sh: silo $i pinned to cores $cores (TRAINER_PIN_CORES=1)" >>"$log"
  # The silo runs in its output folder so it finds appsettings.json (the host's content root is the
  # working directory); setsid detaches it from this script's terminal and process group.
  # Log lines carry a timestamp so the silos' logs can be read side by side.
  (cd "$silo_bin" && exec setsid "${pin[@]}" "${lower[@]}" dotnet trainer-silo.dll \
      --advertise "$(address_of "$i")" --primary-address "$(address_of 0)" \
      --silo-port $((base_silo + i)) --gateway-port $((base_gateway + i)) --primary-port "$base_silo" \
      "--Logging:Console:TimestampFormat=HH:mm:ss.fff " \
      "${dashboard[@]}" "${tls[@]}" "${extra[@]}" </dev/null >>"$log" 2>&1) &
  echo $! >"$dir/silo-$i.pid"
}

# A silo started again keeps its previous log as silo-<i>.log.1, .2, ... (oldest first).
keep_previous_log() {
  local log="$1" k=1
  [[ -s "$log" ]] || return 0
  while [[ -e "$log.$k" ]]; do k=$((k + 1)); done
  mv "$log" "$log.$k"
}

# True when the silos use Redis clustering (TRAINER_SILO_ARGS or the environment say so).
redis_clustering() {
  local args=" ${TRAINER_SILO_ARGS:-} "
  [[ "${Silo__Clustering:-}" =~ ^[Rr]edis$ ]] && return 0
  [[ "$args" =~ [[:space:]]--(clustering|Silo:Clustering)[=[:space:]]+[Rr]edis[[:space:]] ]]
}

# Waits until every listed silo has logged "Silo ready"; fails on a death or the deadline, naming the silo.
wait_ready() {
  local deadline=$((SECONDS + start_timeout)) i pending
  while :; do
    pending=()
    for i in "$@"; do
      grep -q 'Silo ready' "$dir/silo-$i.log" 2>/dev/null && continue
      # NOTE: kill -0, not alive(): for a moment after the fork the process is still bash, not trainer-silo.
      if ! kill -0 "$(pid_of "$i")" 2>/dev/null; then
        echo "cluster.sh: error: silo $i exited before it was ready; last lines of $dir/silo-$i.log:" >&2
        tail -n 30 "$dir/silo-$i.log" >&2 || true
        return 1
      fi
      pending+=("$i")
    done
    [[ ${#pending[@]} -eq 0 ]] && return 0
    if ((SECONDS >= deadline)); then
      for i in "${pending[@]}"; do
        echo "cluster.sh: error: silo $i not ready after ${start_timeout} s; last lines of $dir/silo-$i.log:" >&2
        tail -n 30 "$dir/silo-$i.log" >&2 || true
      done
      return 1
    fi
    sleep 0.2
  done
}

cmd_start() {
  local n="${1:-}"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "start needs the number of silos, e.g. 'start 3' (got '${n}')"
  [[ "$base_dashboard" =~ ^[0-9]+$ ]] && ((base_dashboard == 0 || base_dashboard + n - 1 <= 65535)) \
    || die "TRAINER_BASE_DASHBOARD_PORT must be 0 (no dashboards) or a port such that $n silos fit below 65536 (got '${base_dashboard}')"
  mkdir -p "$dir"
  local i running=()
  for i in $(silo_indices); do
    alive "$(pid_of "$i")" && running+=("silo $i (pid $(pid_of "$i"))")
  done
  if [[ ${#running[@]} -gt 0 ]]; then
    die "a cluster from $dir is still running: ${running[*]}; run '$0 stop' first (or set TRAINER_CLUSTER_DIR)"
  fi
  rm -f "$dir"/silo-*.pid
  build_if_stale Trainer.Silo "$silo_bin/trainer-silo.dll"
  printf 'SILOS=%q\nBASE_SILO_PORT=%q\nBASE_GATEWAY_PORT=%q\nBASE_DASHBOARD_PORT=%q\nSILO_ADDRESSES=%q\nSILO_ARGS=%q\nTLS_CERT=%q\nTLS_KEY=%q\n' \
    "$n" "$base_silo" "$base_gateway" "$base_dashboard" "${TRAINER_SILO_ADDRESSES:-127.0.0.1}" "${TRAINER_SILO_ARGS:-}" \
    "$(tls_path "${TRAINER_TLS_CERT:-}")" "$(tls_path "${TRAINER_TLS_KEY:-}")" >"$dir/cluster.env"

  local all=()
  for ((i = 0; i < n; i++)); do all+=("$i"); done
  if redis_clustering; then
    for i in "${all[@]}"; do start_silo "$i" "$n"; done
    wait_ready "${all[@]}" || { stop_all >&2; exit 1; }
  else
    # The primary first: the others join through it.
    start_silo 0 "$n"
    wait_ready 0 || { stop_all >&2; exit 1; }
    for i in "${all[@]:1}"; do start_silo "$i" "$n"; done
    ((n == 1)) || wait_ready "${all[@]:1}" || { stop_all >&2; exit 1; }
  fi

  local gateways=() dashboards=() scheme=http
  # A silo with the cluster's certificate serves its dashboard over HTTPS with it.
  [[ -n "${TRAINER_TLS_CERT:-}" ]] && scheme=https
  for ((i = 0; i < n; i++)); do
    gateways+=("$(endpoint "$(address_of "$i")" $((base_gateway + i)))")
    [[ "$base_dashboard" != 0 ]] && dashboards+=("$scheme://127.0.0.1:$((base_dashboard + i))/")
  done
  local IFS=,
  echo "cluster of $n silos ready; logs in $dir"
  echo "gateways: ${gateways[*]}"
  [[ -n "${TRAINER_TLS_CERT:-}" ]] && echo "TLS: clients need --tls-cert $(realpath -m "$TRAINER_TLS_CERT")${TRAINER_TLS_KEY:+ --tls-key $(realpath -m "$TRAINER_TLS_KEY")}"
  [[ ${#dashboards[@]} -gt 0 ]] && echo "dashboards: ${dashboards[*]}"
  return 0
}

# Starts again silos of the cluster in $dir that died (e.g. after a SIGKILL), with the settings
# `start` used (cluster.env); returns once they are ready. A silo that still runs is refused.
cmd_restart() {
  (($# > 0)) || die "restart needs the silos to start again, e.g. 'restart 2' or 'restart 0 1 2'"
  [[ -f "$dir/cluster.env" ]] || die "no cluster was started from $dir (no cluster.env)"
  . "$dir/cluster.env"
  base_silo="$BASE_SILO_PORT" base_gateway="$BASE_GATEWAY_PORT" base_dashboard="$BASE_DASHBOARD_PORT"
  IFS=, read -r -a addresses <<<"$SILO_ADDRESSES"
  TRAINER_SILO_ARGS="$SILO_ARGS" TRAINER_TLS_CERT="${TLS_CERT:-}" TRAINER_TLS_KEY="${TLS_KEY:-}"
  local i
  for i in "$@"; do
    [[ "$i" =~ ^[0-9]+$ ]] && ((i < SILOS)) || die "silo '$i' is not one of this cluster's silos 0..$((SILOS - 1))"
    alive "$(pid_of "$i")" && die "silo $i (pid $(pid_of "$i")) is still running; stop or kill it first"
  done
  if ! redis_clustering && [[ " $* " == *" 0 "* ]] && (($# < SILOS)); then
    die "silo 0 is the primary of localhost clustering: the cluster ended with it; run '$0 stop' and '$0 start $SILOS'"
  fi
  for i in "$@"; do start_silo "$i" "$SILOS"; done
  if ! wait_ready "$@"; then
    for i in "$@"; do alive "$(pid_of "$i")" && kill -KILL "$(pid_of "$i")" 2>/dev/null; done
    exit 1
  fi
  echo "silos $* ready; logs in $dir"
}

cmd_status() {
  local i pid any=0
  [[ -f "$dir/cluster.env" ]] && . "$dir/cluster.env"
  [[ -n "${SILO_ADDRESSES:-}" ]] && IFS=, read -r -a addresses <<<"$SILO_ADDRESSES"
  for i in $(silo_indices); do
    any=1
    pid="$(pid_of "$i")"
    local state=dead
    alive "$pid" && state=alive
    local role=""
    # Only localhost clustering has a primary; on Redis no silo is special.
    [[ "$i" == 0 ]] && ! TRAINER_SILO_ARGS="${SILO_ARGS:-${TRAINER_SILO_ARGS:-}}" redis_clustering && role=" (primary)"
    echo "silo $i$role: pid $pid, silo port $((${BASE_SILO_PORT:-$base_silo} + i)), gateway $(endpoint "$(address_of "$i")" $((${BASE_GATEWAY_PORT:-$base_gateway} + i))), $state"
  done
  [[ $any == 1 ]] || echo "no silos in $dir"
}

# TERM the non-primary silos, then the primary (the others leave through its membership table).
stop_all() {
  local i group
  local -a others=() primary=()
  for i in $(silo_indices); do
    if [[ "$i" == 0 ]]; then primary=(0); else others+=("$i"); fi
  done
  for group in others primary; do
    local -n silos="$group"
    [[ ${#silos[@]} -eq 0 ]] && continue
    for i in "${silos[@]}"; do
      alive "$(pid_of "$i")" && kill -TERM "$(pid_of "$i")" 2>/dev/null || true
    done
    local deadline=$((SECONDS + stop_timeout)) left
    while :; do
      left=()
      for i in "${silos[@]}"; do alive "$(pid_of "$i")" && left+=("$i"); done
      [[ ${#left[@]} -eq 0 ]] && break
      if ((SECONDS >= deadline)); then
        for i in "${left[@]}"; do
          echo "silo $i did not stop within ${stop_timeout} s; killing it"
          kill -KILL "$(pid_of "$i")" 2>/dev/null || true
        done
        break
      fi
      sleep 0.2
    done
    for i in "${silos[@]}"; do
      echo "silo $i stopped"
      rm -f "$dir/silo-$i.pid"
    done
  done
}

cmd_build() {
  build_if_stale Trainer.Silo "$silo_bin/trainer-silo.dll"
  build_if_stale Trainer.Client "$client_bin/trainer.dll"
  echo "trainer-silo: $silo_bin/trainer-silo.dll"
  echo "trainer:      $client_bin/trainer.dll"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  status) cmd_status ;;
  stop) stop_all ;;
  build) cmd_build ;;
  *) usage ;;
esac
