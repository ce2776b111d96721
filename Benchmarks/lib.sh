# shellcheck shell=bash
# Shared helpers for Benchmarks/compare.sh and Benchmarks/policies.sh (sourced, not run).
# Everything listens on and talks to 127.0.0.1 (plus 127.0.0.2.. as client source addresses).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
PY=${PYTHON:-python3}

TMP_DIR=""
RESULTS=""
PIDS=()            # every background process we started and have not reaped yet
LAST_PID=""
NOFILE=""
PROXY_PREFIX=()    # taskset prefix for proxies (PIN=1)
WRK_PREFIX=()      # taskset prefix for wrk (PIN=1)

log()  { printf '%s\n' "$*" >&2; }
die()  { log "error: $*"; exit 1; }

# --- lifecycle -----------------------------------------------------------------

alive() { # PID: running and not a zombie
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [[ ${s%% *} != Z ]]
}

children_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || true; }

untrack() {
  local p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Stop PID (and any children it left behind): TERM, bounded wait, KILL, reap.
kill_tree() {
  local pid=$1 kids i k
  [[ -n $pid ]] || return 0
  kids=$(children_of "$pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  for k in $kids; do alive "$k" && kill -KILL "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  untrack "$pid"
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill_tree "$p"; done
  if [[ -n $TMP_DIR && -d $TMP_DIR ]]; then
    if [[ ${KEEP:-0} == 1 ]]; then log "temp dir kept: $TMP_DIR"; else rm -rf "$TMP_DIR"; fi
  fi
  exit "$rc"
}

# spawn NAME CMD... : run CMD in the background from $TMP_DIR, output to $TMP_DIR/NAME.log.
# Sets LAST_PID (the PID of CMD itself: the subshell execs it).
spawn() {
  local name=$1; shift
  (cd "$TMP_DIR" && exec "$@") >"$TMP_DIR/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_port PORT [PID] [TRIES]: until 127.0.0.1:PORT accepts (0.1 s per try) or PID dies.
wait_port() {
  local port=$1 pid=${2:-} tries=${3:-100} i
  for ((i = 0; i < tries; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! alive "$pid"; then return 1; fi
    sleep 0.1
  done
  return 1
}

# port_closed PORT: true when nothing accepts on 127.0.0.1:PORT.
port_closed() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_ports() { "$PY" "$BENCH_DIR/freeports.py" "$1"; }

# cpu_ticks PID: user + system CPU time of the whole process (all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }

log_tail() { [[ -f $TMP_DIR/$1.log ]] && tail -n "${2:-3}" "$TMP_DIR/$1.log" | tr '\n' ' ' | cut -c1-300 || true; }

# --- setup -----------------------------------------------------------------------

ensure_tools() {
  local missing=0 t
  for t in wrk haproxy nginx; do command -v "$t" >/dev/null 2>&1 || missing=1; done
  if ((missing)); then
    log "installing wrk haproxy nginx-light (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk haproxy nginx-light >&2 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y wrk haproxy nginx-light >&2; }
  fi
  for t in wrk haproxy nginx "$PY" taskset; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found"
  done
}

# ensure_h2load: h2load (Debian nghttp2-client) for the steady-rate latency scenario; installed
# like the other tools when missing. Returns 1 when it is still not there.
ensure_h2load() {
  command -v h2load >/dev/null 2>&1 && return 0
  log "installing nghttp2-client (apt-get) for h2load"
  DEBIAN_FRONTEND=noninteractive apt-get install -y nghttp2-client >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y nghttp2-client >&2; } || true
  command -v h2load >/dev/null 2>&1
}

raise_nofile() {
  if ! ulimit -n 65536 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    log "note: could not raise 'ulimit -n' to 65536 (hard limit $(ulimit -Hn)); using $(ulimit -n)"
  fi
  NOFILE=$(ulimit -n)
}

# bench_init: tools, fd limit, temp dir, traps, CPU pinning.
bench_init() {
  [[ $(uname -s) == Linux ]] || die "Linux only (/proc is used for RSS)"
  ensure_tools
  raise_nofile
  TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
  RESULTS="$TMP_DIR/results.tsv"
  : >"$RESULTS"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ ${PIN:-0} == 1 ]]; then
    PROXY_PREFIX=(taskset -c 1)
    WRK_PREFIX=(taskset -c 0)
  fi
}

# load_note: the background load before we start anything heavy (numbers are only
# comparable within one run, and only if this stays low).
load_note() {
  local l1
  l1=$(cut -d' ' -f1 /proc/loadavg)
  echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  if awk -v l="$l1" -v n="$(nproc)" 'BEGIN {exit !(l > n / 4)}'; then
    echo "  WARNING: other processes are using the CPUs; absolute numbers and ratios will be noisy (ROUNDS=3 helps)"
  fi
}

# died_in_round SCENARIO TARGET ROUND PID: true (after noting it in the results and the log) when
# the target's process has died; the caller stops measuring it.
died_in_round() {
  [[ -n $4 ]] && ! alive "$4" || return 1
  record "$1" "$2" note "process died during round $3: $(log_tail "$2-$1")"
  log "($1) $2: process DIED: $(log_tail "$2-$1")"
}

# median "V1 V2 ...": the median of the numbers among the words (the mean of the middle two when
# their count is even), 0 when there is none.
median() {
  tr ' ' '\n' <<<"$1" | grep -E '^[0-9]+(\.[0-9]+)?$' | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }

# run_wrk OUTFILE WRK-ARGS...: wrk output goes to OUTFILE; never fails the script.
run_wrk() {
  local out=$1; shift
  "${WRK_PREFIX[@]}" wrk "$@" >"$out" 2>&1 || true
}

warmup() { # URL [CONNS [WRK-ARGS...]]
  [[ ${WARMUP:-1} == 0 ]] && return 0
  local url=$1 conns=${2:-50}
  shift $(($# < 2 ? $# : 2))
  run_wrk "$TMP_DIR/warmup.txt" -t1 -c"$conns" -d"${WARMUP:-1}s" "$@" "$url"
}

# --- paired runs: the same binary as several proxies, measured in turn ------------------------
# The caller names the modes in PAIR_MODES and sets PAIR_PORT[MODE] and PAIR_PID[MODE]; a wrk
# header for one scenario and mode goes in PAIR_HEADER[SCENARIO-MODE]. Each run adds one word
# to PAIR_RPS, PAIR_P50, PAIR_P99, PAIR_CPU (the proxy's user + system CPU µs per request) and
# PAIR_REQ (requests), keyed SCENARIO-MODE: `median` takes them from there.
PAIR_MODES=()
declare -A PAIR_PORT=() PAIR_PID=() PAIR_HEADER=() PAIR_RPS=() PAIR_P50=() PAIR_P99=() PAIR_CPU=() PAIR_REQ=()

# pair_settings: DURATION (10), ROUNDS (3) and CONNS (50) from the environment, each a positive
# integer, for the paired scripts.
pair_settings() {
  DURATION=${DURATION:-10}
  ROUNDS=${ROUNDS:-3}
  CONNS=${CONNS:-50}
  local v
  for v in DURATION ROUNDS CONNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
  done
}

# pair_setup: pair_settings, the machine's checks (bench_init) and the Switchyard binary, or die.
pair_setup() {
  pair_settings
  bench_init
  resolve_switchyard
  [[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"
}

# pair_ratio A B: A/B with three decimals (0 when B is 0).
pair_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }

# pair_summary SCENARIO BASE OTHER [WORDS]: OTHER against BASE, the medians of req/s (the ratio
# left in PAIR_RATIO), the ratio round by round (the two runs of a round are back to back, so it
# moves less with the machine's load), p99 and the proxy's CPU per request.
pair_summary() {
  local s=$1 base=$2 other=$3 words=${4:-} a b pairs
  words=${words:+$words, }
  a=$(median "${PAIR_RPS[$s-$base]}")
  b=$(median "${PAIR_RPS[$s-$other]}")
  PAIR_RATIO=$(pair_ratio "$b" "$a")
  echo "  ${words}median req/s: $base $a, $other $b; $other/$base = $PAIR_RATIO"
  pairs=$(paste -d' ' <(tr ' ' '\n' <<<"${PAIR_RPS[$s-$other]}") <(tr ' ' '\n' <<<"${PAIR_RPS[$s-$base]}") |
    awk 'NF == 2 && $2 > 0 {printf "%s%.3f", sep, $1 / $2; sep = " "}')
  echo "  ${words}$other/$base by round: $pairs (median $(median "$pairs"))"
  echo "  ${words}median p99: $base $(median "${PAIR_P99[$s-$base]}") ms, $other $(median "${PAIR_P99[$s-$other]}") ms"
  a=$(median "${PAIR_CPU[$s-$base]}")
  b=$(median "${PAIR_CPU[$s-$other]}")
  echo "  ${words}median proxy CPU per request: $base $a us, $other $b us; $base/$other = $(pair_ratio "$a" "$b")"
}

pair_table_head() { printf '  %-9s %-5s %-10s %10s %10s %10s %11s\n' test round mode req/s p50_ms p99_ms cpu_us/req; }

# pair_measure SCENARIO ROUND MODE WRK-ARGS... (the URL last): one wrk run, its row printed.
pair_measure() {
  local s=$1 r=$2 mode=$3 pid out rows before requests cpu rps p50 p99 errors tick_us
  shift 3
  pid=${PAIR_PID[$mode]}
  tick_us=$((1000000 / $(getconf CLK_TCK)))
  out="$TMP_DIR/$s-$mode-$r.txt"
  before=$(cpu_ticks "$pid")
  run_wrk "$out" "$@"
  rows=$("$PY" "$BENCH_DIR/wrkparse.py" "$out" "$s" "$mode")
  requests=$(awk -F'\t' '$3 == "requests" {print $4}' <<<"$rows")
  cpu=$(awk -v t="$(($(cpu_ticks "$pid") - before))" -v n="${requests:-0}" -v us="$tick_us" 'BEGIN {if (n > 0) printf "%.2f", t * us / n}')
  rps=$(awk -F'\t' '$3 == "rps" {printf "%.0f", $4}' <<<"$rows")
  p50=$(awk -F'\t' '$3 == "p50_ms" {print $4}' <<<"$rows")
  p99=$(awk -F'\t' '$3 == "p99_ms" {print $4}' <<<"$rows")
  errors=$(awk -F'\t' '$3 == "errors" || $3 == "non2xx" {n += $4} $3 == "error" {print "wrk failed"} END {if (n) print n " errors"}' <<<"$rows")
  PAIR_RPS[$s-$mode]+="${rps:-} " PAIR_P50[$s-$mode]+="${p50:-} " PAIR_P99[$s-$mode]+="${p99:-} "
  PAIR_CPU[$s-$mode]+="${cpu:-} " PAIR_REQ[$s-$mode]+="${requests:-} "
  printf '  %-9s %-5s %-10s %10s %10s %10s %11s  %s\n' "$s" "$r" "$mode" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${cpu:-?}" "$errors"
  if ! alive "$pid"; then die "the $mode proxy died during $s round $r: $(log_tail "$mode")"; fi
}

# pair_rounds SCENARIO PATH WRK-OPTIONS...: a warm-up of each mode (WARMUP s of GETs with its
# header, CONNS connections), then ROUNDS rounds of one run per mode; every other round the order
# is reversed, so a drift in the machine's load does not favour one mode.
pair_rounds() {
  local s=$1 path=$2 mode r order=() i h
  shift 2
  for mode in "${PAIR_MODES[@]}"; do
    h=${PAIR_HEADER[$s-$mode]:-}
    warmup "http://127.0.0.1:${PAIR_PORT[$mode]}$path" "${CONNS:-50}" ${h:+-H "$h"}
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    order=("${PAIR_MODES[@]}")
    if ((r % 2 == 0)); then
      order=()
      for ((i = ${#PAIR_MODES[@]} - 1; i >= 0; i--)); do order+=("${PAIR_MODES[i]}"); done
    fi
    for mode in "${order[@]}"; do
      h=${PAIR_HEADER[$s-$mode]:-}
      pair_measure "$s" "$r" "$mode" "$@" ${h:+-H "$h"} "http://127.0.0.1:${PAIR_PORT[$mode]}$path"
    done
  done
}

# --- nginx -------------------------------------------------------------------------

# nginx_common NAME: main-context + events + http preamble shared by every nginx we start.
nginx_common() {
  local d="$TMP_DIR/$1"
  mkdir -p "$d"
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 20000; }
EOF
}

nginx_http_common() {
  local d="$TMP_DIR/$1"
  cat <<EOF
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
EOF
}

# start_nginx NAME PORT [pin]: start nginx with $TMP_DIR/NAME.conf, wait for PORT.
# "pin" applies the proxy CPU pinning (PIN=1). Sets LAST_PID (master) and
# LAST_WORKER (the single worker process).
start_nginx() {
  local name=$1 port=$2 i pre=()
  [[ ${3:-} == pin ]] && pre=("${PROXY_PREFIX[@]}")
  spawn "$name" "${pre[@]}" nginx -e "$TMP_DIR/$name.err" -p "$TMP_DIR/$name" -c "$TMP_DIR/$name.conf"
  LAST_WORKER=""
  wait_port "$port" "$LAST_PID" || return 1
  for ((i = 0; i < 50; i++)); do
    LAST_WORKER=$(children_of "$LAST_PID" | head -n1)
    [[ -n $LAST_WORKER ]] && return 0
    sleep 0.1
  done
  return 1
}

# ok_server PORT [BODY]: a server block for write_upstream_conf's extras, answering / with 200
# and BODY (default "ok") on PORT: a second origin in the same nginx.
ok_server() {
  printf '    server {\n        listen 127.0.0.1:%s backlog=4096;\n        location / { return 200 "%s\\n"; }\n    }' "$1" "${2:-ok}"
}

# write_upstream_conf NAME PORT [EXTRA-SERVER-BLOCKS]: the origin server.
#   /    -> 200 "ok\n"        /big -> 1 MiB file (sendfile)
write_upstream_conf() {
  local name=$1 port=$2 extra=${3:-}
  local www="$TMP_DIR/www"
  mkdir -p "$www"
  [[ -f $www/big ]] || head -c 1048576 /dev/urandom >"$www/big"
  {
    nginx_common "$name"
    echo "http {"
    nginx_http_common "$name"
    cat <<EOF
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { return 200 "ok\n"; }
        location = /big { root $www; default_type application/octet-stream; }
    }
$extra
}
EOF
  } >"$TMP_DIR/$name.conf"
}

# --- proxies under test ------------------------------------------------------------

write_haproxy_conf() { # FILE PORT UPPORT
  cat >"$1" <<EOF
global
    nbthread 1
    maxconn 20000
    # maxconn 20000 wants ~40k fds; where the hard 'ulimit -n' is lower (containers),
    # run anyway with the fds we have (9,000 idle clients fit) instead of refusing to start.
    no strict-limits

defaults
    mode http
    maxconn 20000
    option http-keep-alive
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 30s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:$2
    default_backend app

backend app
    http-reuse always
    server up1 127.0.0.1:$3
EOF
}

# write_nginx_proxy_conf NAME PORT UPPORT [EXTRA-HTTP] [EXTRA-LOCATION] [EXTRA-SERVER]
write_nginx_proxy_conf() {
  local name=$1 port=$2 up=$3 extra_http=${4:-} extra_loc=${5:-} extra_srv=${6:-}
  {
    nginx_common "$name"
    echo "http {"
    nginx_http_common "$name"
    cat <<EOF
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    # stream large responses through memory buffers instead of spooling them to temp files
    proxy_max_temp_file_size 0;
    upstream app {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
$extra_http
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
$extra_loc
            proxy_pass http://app;
        }
$extra_srv
    }
}
EOF
  } >"$TMP_DIR/$name.conf"
}

# write_switchyard_conf FILE PORT UPSTREAMS-JSON ROUTE-JSON [TOP-LEVEL-KEYS]
# TOP-LEVEL-KEYS: more `"key": value,` members, e.g. `"control": { "socket": "/path" },`.
write_switchyard_conf() {
  cat >"$1" <<EOF
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$2" } ],
  "limits": { "maxConnections": 20000 },
  ${5:-}
  "upstreams": $3,
  "routes": [ $4 ]
}
EOF
}

# resolve_switchyard: sets SY_BIN (runnable binary) or SY_SKIP (why not).
resolve_switchyard() {
  SY_BIN=""
  SY_SKIP=""
  if [[ -n ${SWITCHYARD:-} ]]; then
    if [[ -x $SWITCHYARD ]]; then SY_BIN=$SWITCHYARD; else SY_SKIP="\$SWITCHYARD=$SWITCHYARD is not an executable file"; fi
    return 0
  fi
  local bin="$REPO_DIR/.build/release/switchyard"
  if [[ ! -x $bin ]]; then
    if [[ ${NO_BUILD:-0} == 1 ]]; then
      SY_SKIP="$bin not found (NO_BUILD=1)"
      return 0
    fi
    if ! command -v swift >/dev/null 2>&1; then
      SY_SKIP="$bin not found and swift is not installed"
      return 0
    fi
    log "building switchyard: swift build -c release --product switchyard (log: $TMP_DIR/build.log)"
    if ! (cd "$REPO_DIR" && timeout "${BUILD_TIMEOUT:-1800}" swift build -c release --product switchyard) >"$TMP_DIR/build.log" 2>&1; then
      log "switchyard build failed; last lines:"
      tail -n 15 "$TMP_DIR/build.log" >&2 || true
      SY_SKIP="release build failed (swift build -c release --product switchyard)"
      return 0
    fi
  fi
  if [[ -x $bin ]]; then SY_BIN=$bin; else SY_SKIP="$bin not found after build"; fi
}

# start_switchyard NAME CONFIG PORT: sets LAST_PID, or returns 1 with SKIP_REASON.
start_switchyard() {
  local name=$1 cfg=$2 port=$3
  SKIP_REASON=""
  if [[ -z $SY_BIN ]]; then SKIP_REASON=$SY_SKIP; return 1; fi
  spawn "$name" "${PROXY_PREFIX[@]}" "$SY_BIN" run --config "$cfg"
  if ! wait_port "$port" "$LAST_PID" 100; then
    SKIP_REASON="failed to start ($(alive "$LAST_PID" && echo "port $port never opened" || echo "exited")): $(log_tail "$name")"
    kill_tree "$LAST_PID"
    return 1
  fi
}
