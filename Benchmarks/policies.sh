#!/usr/bin/env bash
# Cost of Switchyard's traffic policies, with bars:
#   split    plain proxying vs. a route with split + sticky + rules        bar: req/s ratio >= 0.95
#   mirror   100% mirror to a fast shadow, Switchyard vs. NGINX `mirror`    bar: req/s ratio >= 3x
#            (+ shadow request counts, to prove the copies arrive)
#   shadowfail  mirror to a 200 ms shadow and to a dead shadow:
#            Switchyard primary p99 mirrored / unmirrored     bar: <= 1.2x (200 ms), <= 1.1x (dead)
#            (+ error counts, and NGINX's mirror p50 with the 200 ms shadow)
#
#   bash Benchmarks/policies.sh
#   DURATION=5 ROUNDS=1 ONLY=mirror bash Benchmarks/policies.sh
#
# Environment (all optional): DURATION=10 (s per wrk run), WARMUP=1, ROUNDS=3 (runs per
# target, alternating between targets; the median is reported), ONLY=split,mirror,shadowfail,
# SLOW_MS=200, PIN=1, SWITCHYARD=path, NO_BUILD=1, KEEP=1 (as in compare.sh).
# Every measurement is wrk -t1 -c50 --latency on "/". The NGINX parts run even when
# Switchyard is missing, so the anchors can be checked on their own.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-split,mirror,shadowfail}
SLOW_MS=${SLOW_MS:-200}
for v in DURATION WARMUP ROUNDS SLOW_MS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((DURATION > 0 && ROUNDS > 0)) || die "DURATION and ROUNDS must be > 0"
for s in ${ONLY//,/ }; do
  [[ $s =~ ^(split|mirror|shadowfail)$ ]] || die "ONLY takes a comma list of split,mirror,shadowfail (got '$ONLY')"
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

bench_init
resolve_switchyard

# --- fixed servers: origin (app + app2), fast shadow (nginx), slow shadow (python), dead port ---

mapfile -t P < <(free_ports 5)
((${#P[@]} == 5)) || die "could not pick free ports"
UP=${P[0]} UP2=${P[1]} SHADOW=${P[2]} SLOW=${P[3]} DEAD=${P[4]}

write_upstream_conf upstream "$UP" "$(ok_server "$UP2" ok2)"
start_nginx upstream "$UP" || die "origin nginx did not start: $(cat "$TMP_DIR/upstream.err" 2>/dev/null)"
wait_port "$UP2" || die "origin app2 port $UP2 not open"

SHADOW_LOG="$TMP_DIR/shadow/shadow.log"
{
  nginx_common shadow
  echo "http {"
  nginx_http_common shadow
  cat <<EOF
    log_format shadow '\$http_x_switchyard_shadow \$request_uri';
    server {
        listen 127.0.0.1:$SHADOW backlog=4096;
        access_log $SHADOW_LOG shadow buffer=256k flush=1s;
        location / { return 200 "shadow\n"; }
    }
}
EOF
} >"$TMP_DIR/shadow.conf"
start_nginx shadow "$SHADOW" || die "shadow nginx did not start: $(cat "$TMP_DIR/shadow.err" 2>/dev/null)"

SLOW_COUNT="$TMP_DIR/slow.count"
spawn slow "$PY" "$BENCH_DIR/slow_upstream.py" --listen "127.0.0.1:$SLOW" --delay-ms "$SLOW_MS" --count-file "$SLOW_COUNT"
wait_port "$SLOW" "$LAST_PID" || die "slow shadow did not start: $(log_tail slow)"
port_closed "$DEAD" || die "the dead-shadow port $DEAD is in use"

{
  echo "Switchyard policy benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, wrk -t1 -c50 -d${DURATION}s x $ROUNDS rounds (median)"
  if [[ ${PIN:-0} == 1 ]]; then echo "  PIN=1: proxy on CPU 1, wrk on CPU 0"; else echo "  no CPU pinning (PIN=1 to pin)"; fi
  echo "  origin app :$UP, app2 :$UP2, fast shadow (nginx) :$SHADOW, slow shadow (${SLOW_MS} ms, python) :$SLOW, dead shadow :$DEAD"
  echo "  switchyard: ${SY_BIN:-SKIPPED ($SY_SKIP)}"
  load_note
} >"$TMP_DIR/header.txt"
cat "$TMP_DIR/header.txt" >&2

# --- targets -------------------------------------------------------------------------------

declare -A PORT_OF=() PID_OF=()
UPS_APP="\"app\": { \"endpoints\": [\"127.0.0.1:$UP\"] }"

# sy NAME UPSTREAMS-JSON-BODY ROUTE-JSON: start a Switchyard target (or record why not).
sy() {
  local name=$1 port
  port=$(free_ports 1)
  write_switchyard_conf "$TMP_DIR/$name.json" "$port" "{ $2 }" "$3"
  if start_switchyard "$name" "$TMP_DIR/$name.json" "$port"; then
    PORT_OF[$name]=$port PID_OF[$name]=$LAST_PID
    warmup "http://127.0.0.1:$port/"
  else
    record "$PART" "$name" skip "$SKIP_REASON"
    log "[$PART] $name: SKIPPED: $SKIP_REASON"
  fi
}

# ngx NAME [SHADOW-PORT]: NGINX proxy to app, with `mirror` to SHADOW-PORT if given.
ngx() {
  local name=$1 port http="" loc="" srv=""
  port=$(free_ports 1)
  if [[ -n ${2:-} ]]; then
    http="    upstream shadow { server 127.0.0.1:$2; keepalive 64; keepalive_requests 100000000; }"
    loc="            mirror /mirror;"
    srv="        location = /mirror { internal; proxy_pass http://shadow\$request_uri; }"
  fi
  write_nginx_proxy_conf "$name" "$port" "$UP" "$http" "$loc" "$srv"
  if start_nginx "$name" "$port" pin; then
    PORT_OF[$name]=$port PID_OF[$name]=$LAST_PID
    warmup "http://127.0.0.1:$port/"
  else
    record "$PART" "$name" skip "nginx failed to start: $(tail -n2 "$TMP_DIR/$name.err" 2>/dev/null | tr '\n' ' ')"
    log "[$PART] $name: SKIPPED (nginx failed to start)"
    kill_tree "$LAST_PID"
  fi
}

stop_all() {
  local n
  for n in "${!PID_OF[@]}"; do kill_tree "${PID_OF[$n]}"; done
  PORT_OF=() PID_OF=()
}

shadow_lines() { [[ -f $SHADOW_LOG ]] && wc -l <"$SHADOW_LOG" || echo 0; }
slow_count() { cat "$SLOW_COUNT" 2>/dev/null || echo 0; }

# measure NAME ROUND [COUNTER]: one wrk run; COUNTER (shadow_lines|slow_count) counts shadow copies.
measure() {
  local name=$1 r=$2 counter=${3:-} out c0=0 c1 n
  [[ -n ${PORT_OF[$name]:-} ]] || return 0
  out="$TMP_DIR/$PART-$name-$r.txt"
  [[ -n $counter ]] && { sleep 1.5; c0=$($counter); }
  run_wrk "$out" -t1 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:${PORT_OF[$name]}/"
  "$PY" "$BENCH_DIR/wrkparse.py" "$out" "$PART" "$name" >>"$RESULTS"
  if [[ -n $counter ]]; then
    sleep 2.5 # let in-flight copies land and the shadow's access log flush (flush=1s)
    c1=$($counter)
    n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out")
    record "$PART" "$name" shadow_received "$((c1 - c0))"
    record "$PART" "$name" shadow_sent "${n:-0}"
  fi
  if ! alive "${PID_OF[$name]}"; then
    record "$PART" "$name" note "process died during round $r: $(log_tail "$name")"
    log "[$PART] $name: DIED: $(log_tail "$name")"
    unset "PORT_OF[$name]"
  fi
  log "[$PART] $name round $r: $(awk '/Requests\/sec/ {printf "%s req/s ", $2} /^ +99%/ {printf "p99 %s ", $2}' "$out")"
}

# --- parts -------------------------------------------------------------------------------------

if want split; then
  PART=split
  log "[split] plain route vs. split 90/10 + sticky cookie + header rule"
  sy sy-plain "$UPS_APP" '{ "name": "all", "upstream": "app" }'
  sy sy-split "$UPS_APP, \"app2\": { \"endpoints\": [\"127.0.0.1:$UP2\"] }" '{ "name": "all",
      "split": [ {"variant": "stable", "upstream": "app", "weight": 90},
                 {"variant": "canary", "upstream": "app2", "weight": 10} ],
      "rules": [ {"header": {"x-canary": "always"}, "variant": "canary"} ],
      "sticky": { "cookie": "sy-exp" } }'
  if [[ -n ${PORT_OF[sy-split]:-} ]]; then
    probe_out=$("$PY" "$BENCH_DIR/probe.py" --port "${PORT_OF[sy-split]}" --cookie sy-exp) && probe_ok=1 || probe_ok=0
    record split sy-split probe "$probe_out"
    record split sy-split probe_ok "$probe_ok"
    log "[split] probe: $probe_out"
  fi
  for ((r = 1; r <= ROUNDS; r++)); do
    measure sy-plain "$r"
    measure sy-split "$r"
  done
  stop_all
fi

if want mirror; then
  PART=mirror
  log "[mirror] 100% mirror to a fast shadow: Switchyard vs. NGINX mirror"
  sy sy-plain "$UPS_APP" '{ "name": "all", "upstream": "app" }'
  # The fast shadow shares the 2 CPUs with wrk, the origin and the proxy: at ~30k copies/s and a
  # few ms of shadow latency about 100 copies are in flight, the default maxInFlight, beyond which
  # copies are dropped and counted. This part measures copies delivered, so the cap is raised.
  sy sy-mirror "$UPS_APP, \"shadow\": { \"endpoints\": [\"127.0.0.1:$SHADOW\"], \"maxInFlight\": 1000 }" \
    '{ "name": "all", "upstream": "app", "mirror": [ {"upstream": "shadow", "percent": 100} ] }'
  ngx nginx-plain
  ngx nginx-mirror "$SHADOW"
  for ((r = 1; r <= ROUNDS; r++)); do
    measure sy-plain "$r"
    measure sy-mirror "$r" shadow_lines
    measure nginx-plain "$r"
    measure nginx-mirror "$r" shadow_lines
  done
  stop_all
fi

if want shadowfail; then
  PART=shadowfail
  log "[shadowfail] mirror to a ${SLOW_MS} ms shadow and to a dead one: primary latency"
  sy sy-plain "$UPS_APP" '{ "name": "all", "upstream": "app" }'
  sy sy-slow "$UPS_APP, \"shadow\": { \"endpoints\": [\"127.0.0.1:$SLOW\"] }" \
    '{ "name": "all", "upstream": "app", "mirror": [ {"upstream": "shadow", "percent": 100} ] }'
  sy sy-dead "$UPS_APP, \"shadow\": { \"endpoints\": [\"127.0.0.1:$DEAD\"] }" \
    '{ "name": "all", "upstream": "app", "mirror": [ {"upstream": "shadow", "percent": 100} ] }'
  ngx nginx-plain
  ngx nginx-slow "$SLOW"
  for ((r = 1; r <= ROUNDS; r++)); do
    measure sy-plain "$r"
    measure sy-slow "$r" slow_count
    measure sy-dead "$r"
    measure nginx-plain "$r"
    measure nginx-slow "$r" slow_count
  done
  stop_all
fi

cat "$TMP_DIR/header.txt"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$BENCH_DIR/report_policies.py" "$RESULTS" "$SLOW_MS"
