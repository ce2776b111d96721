#!/usr/bin/env bash
# Switchyard vs. HAProxy / NGINX / direct, all measured in one run, with ratios.
#
#   bash Benchmarks/compare.sh                  # everything, 10 s per measurement
#   DURATION=3 ONLY=a,b bash Benchmarks/compare.sh
#
# Environment (all optional):
#   DURATION=10        seconds per wrk measurement in (a) and (b)
#   WARMUP=1           seconds of wrk warm-up per target before each measurement (0 = none)
#   ROUNDS=1           (a), (b): measurements per target, alternating between targets; the
#                      report shows the median (use 3 on a machine with background load)
#   ONLY=a,b,c,d,e     scenarios to run
#   TARGETS=haproxy,nginx,switchyard,direct   targets for (a), (b), (c)
#   D_TARGETS=switchyard                      targets for (d) (anchors may be added)
#   E_TARGETS=$TARGETS                        targets for (e)
#   IDLE_CONNS=9000    idle keep-alive connections in (c)
#   SETTLE=2           seconds to wait after the last idle connection before reading RSS
#   SOURCES=4          client source addresses for (c): 127.0.0.2 .. 127.0.0.(1+SOURCES)
#   D_REQUESTS=1000000 requests for the second RSS sample in (d) (first sample: 10,000)
#   E_PAIRS=6          (e): measurements per target, alternating (with two targets: pairs)
#   E_DURATION=10      (e): seconds per h2load measurement
#   E_RPS=400          (e): requests per second per connection (h2load --rps)
#   E_CONNS=50         (e): connections (h2load -c); offered rate = E_RPS * E_CONNS
#   E_WARMUP=1         (e): seconds of h2load warm-up at the same rate, not measured (0 = none)
#   PIN=1              proxy on CPU 1, wrk on CPU 0 (default: no pinning)
#   SWITCHYARD=path    Switchyard binary (default .build/release/switchyard, built if missing)
#   BASELINE=path      another Switchyard binary (e.g. the previous commit's), measured as the
#                      target "baseline" when TARGETS (or E_TARGETS) names it; the report adds
#                      the ratio Switchyard / baseline
#   NO_BUILD=1         never run swift build; skip Switchyard if the binary is missing
#   KEEP=1             keep the temp dir (configs, logs, raw wrk output)
#
# Progress goes to stderr; the result tables go to stdout.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-1}
ONLY=${ONLY:-a,b,c,d,e}
TARGETS=${TARGETS:-haproxy,nginx,switchyard,direct}
D_TARGETS=${D_TARGETS:-switchyard}
E_TARGETS=${E_TARGETS:-$TARGETS}
E_PAIRS=${E_PAIRS:-6}
E_DURATION=${E_DURATION:-10}
E_RPS=${E_RPS:-400}
E_CONNS=${E_CONNS:-50}
E_WARMUP=${E_WARMUP:-1}
IDLE_CONNS=${IDLE_CONNS:-9000}
SETTLE=${SETTLE:-2}
SOURCES=${SOURCES:-4}
D_REQUESTS=${D_REQUESTS:-1000000}
D_FIRST=10000
D_MAX_SECONDS=${D_MAX_SECONDS:-900}

for v in DURATION ROUNDS WARMUP IDLE_CONNS SETTLE SOURCES D_REQUESTS D_MAX_SECONDS \
  E_PAIRS E_DURATION E_RPS E_CONNS E_WARMUP; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((DURATION > 0 && ROUNDS > 0)) || die "DURATION and ROUNDS must be > 0"
((E_PAIRS > 0 && E_DURATION > 0 && E_RPS > 0 && E_CONNS > 0)) || die "E_PAIRS, E_DURATION, E_RPS and E_CONNS must be > 0"
for s in ${ONLY//,/ }; do [[ $s =~ ^[abcde]$ ]] || die "ONLY takes a comma list of a,b,c,d,e (got '$ONLY')"; done
for t in ${TARGETS//,/ } ${D_TARGETS//,/ } ${E_TARGETS//,/ }; do
  [[ $t =~ ^(haproxy|nginx|switchyard|direct|baseline)$ ]] || die "unknown target '$t'"
  [[ $t != baseline || -x ${BASELINE:-} ]] || die "target baseline needs BASELINE=path to an executable"
done
((D_REQUESTS > D_FIRST)) || die "D_REQUESTS must be > $D_FIRST"

want() { [[ ",$ONLY," == *",$1,"* ]]; }

bench_init
resolve_switchyard
H2LOAD_SKIP=""
if want e && ! ensure_h2load; then
  H2LOAD_SKIP="h2load not found (apt-get install nghttp2-client failed)"
  log "(e): SKIPPED: $H2LOAD_SKIP"
fi

# --- the origin server ---------------------------------------------------------------

UP_PORT=$(free_ports 1)
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "upstream nginx did not start: $(log_tail upstream 5) $(cat "$TMP_DIR/upstream.err" 2>/dev/null)"
UP_PID=$LAST_PID
UP_WORKER=$LAST_WORKER

{
  echo "Switchyard benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
  echo "  $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}'), $(haproxy -v | head -n1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*: //')$(want e && [[ -z $H2LOAD_SKIP ]] && h2load --version 2>&1 | head -n1 | sed 's/^h2load /, h2load /')"
  if [[ ${PIN:-0} == 1 ]]; then
    echo "  PIN=1: proxy on CPU 1, wrk on CPU 0, origin nginx unpinned"
  else
    echo "  no CPU pinning: wrk, the proxy and the origin nginx share the $(nproc) CPUs (PIN=1 to pin)"
  fi
  echo "  origin: nginx (1 worker) on 127.0.0.1:$UP_PORT; ulimit -n $NOFILE; switchyard: ${SY_BIN:-SKIPPED ($SY_SKIP)}"
  load_note
} >"$TMP_DIR/header.txt"
cat "$TMP_DIR/header.txt" >&2
[[ -n $SY_BIN ]] || log "switchyard: SKIPPED in every scenario: $SY_SKIP"

# --- targets ---------------------------------------------------------------------------

TARGET_PID=""
TARGET_PORT=""
RSS_PID=""
RSS_DESC=""
SKIP_REASON=""

# start_target TARGET TAG: sets TARGET_PID TARGET_PORT RSS_PID RSS_DESC, or returns 1 with SKIP_REASON.
start_target() {
  local t=$1 name="$1-$2"
  TARGET_PID="" TARGET_PORT="" RSS_PID="" RSS_DESC="" SKIP_REASON=""
  case $t in
    direct)
      TARGET_PORT=$UP_PORT RSS_PID=$UP_WORKER RSS_DESC="origin nginx worker"
      ;;
    haproxy)
      TARGET_PORT=$(free_ports 1)
      write_haproxy_conf "$TMP_DIR/$name.cfg" "$TARGET_PORT" "$UP_PORT"
      spawn "$name" "${PROXY_PREFIX[@]}" haproxy -db -f "$TMP_DIR/$name.cfg"
      TARGET_PID=$LAST_PID RSS_PID=$LAST_PID RSS_DESC="haproxy process"
      if ! wait_port "$TARGET_PORT" "$TARGET_PID"; then
        SKIP_REASON="haproxy failed to start: $(log_tail "$name")"
        stop_target
        return 1
      fi
      ;;
    nginx)
      TARGET_PORT=$(free_ports 1)
      write_nginx_proxy_conf "$name" "$TARGET_PORT" "$UP_PORT"
      if ! start_nginx "$name" "$TARGET_PORT" pin; then
        TARGET_PID=$LAST_PID
        SKIP_REASON="nginx failed to start: $(log_tail "$name") $(tail -n2 "$TMP_DIR/$name.err" 2>/dev/null | tr '\n' ' ')"
        stop_target
        return 1
      fi
      TARGET_PID=$LAST_PID RSS_PID=$LAST_WORKER RSS_DESC="nginx worker only"
      ;;
    switchyard | baseline)
      TARGET_PORT=$(free_ports 1)
      write_switchyard_conf "$TMP_DIR/$name.json" "$TARGET_PORT" \
        "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }" \
        '{ "name": "all", "upstream": "app" }'
      if [[ $t == baseline ]]; then
        SY_BIN=$BASELINE start_switchyard "$name" "$TMP_DIR/$name.json" "$TARGET_PORT" || return 1
      else
        start_switchyard "$name" "$TMP_DIR/$name.json" "$TARGET_PORT" || return 1
      fi
      TARGET_PID=$LAST_PID RSS_PID=$LAST_PID RSS_DESC="switchyard process"
      ;;
  esac
}

stop_target() {
  [[ -n $TARGET_PID ]] && kill_tree "$TARGET_PID"
  TARGET_PID=""
}

# after_run SCENARIO TARGET TAG: note a proxy that died during the measurement.
after_run() {
  if [[ -n $TARGET_PID ]] && ! alive "$TARGET_PID"; then
    record "$1" "$2" note "process died during the run: $(log_tail "$2-$3")"
    log "($1) $2: process DIED during the run: $(log_tail "$2-$3")"
  fi
}

progress() { # SCENARIO TARGET: one line of what was just recorded
  log "($1) $2: $(awk -F'\t' -v s="$1" -v t="$2" '$1==s && $2==t && $3 !~ /detail/ {printf "%s=%s ", $3, $4}' "$RESULTS")"
}

skip() { # SCENARIO TARGET
  record "$1" "$2" skip "$SKIP_REASON"
  log "($1) $2: SKIPPED: $SKIP_REASON"
}

# --- (a) and (b): throughput and latency ----------------------------------------------------

wrk_line() { awk '/Requests\/sec/ {printf "%s req/s ", $2} /^ +50%/ {printf "p50 %s ", $2} /^ +99%/ {printf "p99 %s ", $2} /Non-2xx|Socket errors/ {printf "| %s ", $0}' "$1"; }

# All targets of the scenario run side by side (idle ones cost nothing); with ROUNDS > 1 the
# measurements alternate between targets and the report takes the median, so a change in
# background load hits every target alike.
scenario_wrk() { # SCENARIO PATH CONNS
  local s=$1 path=$2 conns=$3 t r url out
  local -A port=() pid=()
  for t in ${TARGETS//,/ }; do
    if start_target "$t" "$s"; then
      port[$t]=$TARGET_PORT pid[$t]=$TARGET_PID
    else
      skip "$s" "$t"
    fi
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in ${TARGETS//,/ }; do
      [[ -n ${port[$t]:-} ]] || continue
      url="http://127.0.0.1:${port[$t]}$path"
      out="$TMP_DIR/$s-$t-$r.txt"
      warmup "$url" "$conns"
      run_wrk "$out" -t1 -c"$conns" -d"${DURATION}s" --latency "$url"
      "$PY" "$BENCH_DIR/wrkparse.py" "$out" "$s" "$t" >>"$RESULTS"
      log "($s) $t round $r/$ROUNDS: $(wrk_line "$out")"
      died_in_round "$s" "$t" "$r" "${pid[$t]}" && unset "port[$t]"
    done
  done
  for t in "${!pid[@]}"; do [[ -n ${pid[$t]} ]] && kill_tree "${pid[$t]}"; done
  return 0
}

# --- (c): RSS per idle keep-alive connection --------------------------------------------------

scenario_c() {
  local t before after ok failed alive_n line cpid i hold=$((SETTLE + 3))
  for t in ${TARGETS//,/ }; do
    log "(c) $t: $IDLE_CONNS idle keep-alive connections"
    start_target "$t" c || { skip c "$t"; continue; }
    warmup "http://127.0.0.1:$TARGET_PORT/" 2
    sleep 1
    before=$(rss_kib "$RSS_PID")
    spawn "idle-$t" "$PY" "$BENCH_DIR/idle_conns.py" --port "$TARGET_PORT" --count "$IDLE_CONNS" \
      --hold "$hold" --sources "$SOURCES"
    cpid=$LAST_PID
    line=""
    for ((i = 0; i < 1800; i++)); do # up to 180 s to open them all
      line=$(grep -m1 '^READY' "$TMP_DIR/idle-$t.log" 2>/dev/null || true)
      [[ -n $line ]] && break
      alive "$cpid" || break
      sleep 0.1
    done
    if [[ -z $line ]]; then
      record c "$t" error "idle client never got ready: $(log_tail "idle-$t")"
      log "(c) $t: idle client failed: $(log_tail "idle-$t")"
      kill_tree "$cpid"
      stop_target
      continue
    fi
    sleep "$SETTLE"
    after=$(rss_kib "$RSS_PID")
    for ((i = 0; i < (hold + 15) * 10; i++)); do
      grep -q '^DONE' "$TMP_DIR/idle-$t.log" 2>/dev/null && break
      alive "$cpid" || break
      sleep 0.1
    done
    kill_tree "$cpid"
    ok=$(sed -n 's/^READY.* ok=\([0-9]*\).*/\1/p' "$TMP_DIR/idle-$t.log")
    failed=$(sed -n 's/^READY.* failed=\([0-9]*\).*/\1/p' "$TMP_DIR/idle-$t.log")
    alive_n=$(sed -n 's/^DONE alive=\([0-9]*\).*/\1/p' "$TMP_DIR/idle-$t.log")
    record c "$t" rss_before_kib "${before:-0}"
    record c "$t" rss_after_kib "${after:-0}"
    record c "$t" conns_ok "${ok:-0}"
    record c "$t" conns_failed "${failed:-0}"
    record c "$t" conns_alive "${alive_n:-?}"
    record c "$t" rss_of "$RSS_DESC"
    if [[ -n $before && -n $after && ${ok:-0} -gt 0 ]]; then
      record c "$t" kib_per_conn "$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.3f", (a - b) / n}')"
    fi
    if [[ ${ok:-0} != "$IDLE_CONNS" ]]; then
      log "(c) $t: only ${ok:-0} of $IDLE_CONNS connections completed their request ($line)"
    fi
    after_run c "$t" c
    progress c "$t"
    stop_target
  done
}

# --- (d): RSS after 10k and after 1M requests --------------------------------------------------

# wrk_count NAME URL N BOUND_SECONDS: run wrk until N responses (or BOUND seconds).
wrk_count() {
  local name=$1 url=$2 n=$3 bound=$4 marker="$TMP_DIR/$1.done" wpid i
  rm -f "$marker"
  spawn "$name" "${WRK_PREFIX[@]}" wrk -t1 -c50 -d"${bound}s" --latency -s "$BENCH_DIR/stop_after.lua" "$url" -- "$n" "$marker"
  wpid=$LAST_PID
  for ((i = 0; i < bound * 10 + 50; i++)); do
    [[ -e $marker ]] && break
    alive "$wpid" || break
    sleep 0.1
  done
  alive "$wpid" && kill -INT "$wpid" 2>/dev/null || true # wrk prints its summary on SIGINT
  for ((i = 0; i < 100; i++)); do alive "$wpid" || break; sleep 0.1; done
  kill_tree "$wpid"
}

scenario_d() {
  local t est bound url r1 r2 n1 n2 rest
  # (a)'s slowest round (one line per round) sets the time bound.
  est=$(awk -F'\t' '$1=="a" && $2=="switchyard" && $3=="rps" {print int($4)}' "$RESULTS" | sort -n | head -n1)
  [[ -n $est && $est -gt 0 ]] || est=20000
  rest=$((D_REQUESTS - D_FIRST))
  bound=$((rest * 2 / est + 30)) # half the (a) rate, plus margin
  ((bound <= D_MAX_SECONDS)) || bound=$D_MAX_SECONDS
  for t in ${D_TARGETS//,/ }; do
    log "(d) $t: RSS after $D_FIRST requests, then after $D_REQUESTS (bound ${bound}s)"
    start_target "$t" d || { skip d "$t"; continue; }
    url="http://127.0.0.1:$TARGET_PORT/"
    wrk_count "d-$t-1" "$url" "$D_FIRST" 120
    sleep 1
    r1=$(rss_kib "$RSS_PID")
    wrk_count "d-$t-2" "$url" "$rest" "$bound"
    sleep 1
    r2=$(rss_kib "$RSS_PID")
    n1=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP_DIR/d-$t-1.log")
    n2=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP_DIR/d-$t-2.log")
    record d "$t" rss_of "$RSS_DESC"
    record d "$t" rss_first_kib "${r1:-0}"
    record d "$t" rss_last_kib "${r2:-0}"
    record d "$t" requests_first "${n1:-0}"
    record d "$t" requests_total "$((${n1:-0} + ${n2:-0}))"
    "$PY" "$BENCH_DIR/wrkparse.py" "$TMP_DIR/d-$t-2.log" d "$t" last_ | grep -E 'last_(errors|rps)' >>"$RESULTS" || true
    if [[ -n $r1 && -n $r2 && $r1 -gt 0 ]]; then
      record d "$t" growth_pct "$(awk -v a="$r2" -v b="$r1" 'BEGIN {printf "%.2f", (a - b) * 100 / b}')"
    fi
    after_run d "$t" d
    progress d "$t"
    stop_target
  done
}

# --- (e): latency at a steady, unsaturated rate -------------------------------------------------

# h2load (HTTP/1.1, one thread) sends E_RPS requests a second on each of E_CONNS keep-alive
# connections, a fixed offered rate below what the targets saturate at, and logs every
# request; h2loadparse.py takes the percentiles from that log. The targets run side by side and
# the measurements alternate, the order rotating each round (with two targets: A B, B A, ...),
# so a change in background load hits both alike.
scenario_e() {
  local -a order=()
  local -A port=() pid=()
  local t r i n url out rows rc warm=()
  ((E_WARMUP > 0)) && warm=(--warm-up-time="${E_WARMUP}s")
  for t in ${E_TARGETS//,/ }; do
    if [[ -n $H2LOAD_SKIP ]]; then
      SKIP_REASON=$H2LOAD_SKIP
      skip e "$t"
    elif start_target "$t" e; then
      port[$t]=$TARGET_PORT pid[$t]=$TARGET_PID
      order+=("$t")
    else
      skip e "$t"
    fi
  done
  n=${#order[@]}
  for ((r = 1; r <= E_PAIRS && n > 0; r++)); do
    for ((i = 0; i < n; i++)); do
      t=${order[(i + r - 1) % n]}
      [[ -n ${port[$t]:-} ]] || continue
      url="http://127.0.0.1:${port[$t]}/"
      out="$TMP_DIR/e-$t-$r"
      # h2load can keep reconnecting past -D when connections keep closing: bound it.
      rc=0
      "${WRK_PREFIX[@]}" timeout "$((E_WARMUP + E_DURATION + 30))" \
        h2load --h1 -t1 -c"$E_CONNS" --rps "$E_RPS" -D "$E_DURATION" "${warm[@]}" \
        --log-file "$out.log" "$url" >"$out.txt" 2>&1 || rc=$?
      ((rc == 124)) && record e "$t" note "round $r: h2load did not finish in time and was stopped"
      rows=$("$PY" "$BENCH_DIR/h2loadparse.py" "$out.log" "$out.txt" e "$t")
      printf '%s\n' "$rows" >>"$RESULTS"
      log "(e) $t round $r/$E_PAIRS: $(printf '%s\n' "$rows" | awk -F'\t' '{k[$3] = $4}
        END {if ("error" in k) print k["error"]; else printf "%s req/s, p50 %s p99 %s p99.9 %s ms, non-2xx %s, failed %s",
             k["rps"], k["p50_ms"], k["p99_ms"], k["p999_ms"], k["non2xx"], k["failed"]}')"
      died_in_round e "$t" "$r" "${pid[$t]}" && unset "port[$t]"
    done
  done
  for t in "${!pid[@]}"; do [[ -n ${pid[$t]} ]] && kill_tree "${pid[$t]}"; done
  return 0
}

want a && log "(a) small responses: warm-up ${WARMUP}s + wrk -t1 -c50 -d${DURATION}s --latency /, $ROUNDS round(s)"
want a && scenario_wrk a / 50
want b && log "(b) 1 MiB responses: warm-up ${WARMUP}s + wrk -t1 -c10 -d${DURATION}s --latency /big, $ROUNDS round(s)"
want b && scenario_wrk b /big 10
want c && scenario_c
want d && scenario_d
want e && log "(e) steady rate: h2load --h1 -t1 -c$E_CONNS --rps $E_RPS -D $E_DURATION ($((E_CONNS * E_RPS)) req/s offered), warm-up ${E_WARMUP}s, $E_PAIRS round(s) alternating"
want e && scenario_e

cat "$TMP_DIR/header.txt"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
DURATION=$DURATION ROUNDS=$ROUNDS IDLE_CONNS=$IDLE_CONNS D_REQUESTS=$D_REQUESTS ONLY=$ONLY TARGETS=$TARGETS \
  E_PAIRS=$E_PAIRS E_DURATION=$E_DURATION E_RPS=$E_RPS E_CONNS=$E_CONNS \
  "$PY" "$BENCH_DIR/report.py" "$RESULTS"
