#!/usr/bin/env bash
# Switchyard terminating TLS vs. HAProxy and NGINX terminating TLS: the same ECDSA P-256
# certificate, one worker each, the same plain origin, all measured in one run, with ratios.
#
#   bash Benchmarks/tls.sh                                   # everything, 10 s per measurement, 3 rounds
#   DURATION=3 ROUNDS=1 bash Benchmarks/tls.sh               # quick look
#   ONLY=t2,t2f TARGETS=haproxy,switchyard bash Benchmarks/tls.sh
#
# Scenarios (ONLY, comma list):
#   t1   HTTPS keep-alive, small responses: wrk -t1 -c50 --latency https://.../           req/s, p99
#   t2   new TLS connections, one request each: wrk -t1 -c50 -H "Connection: close"      connections/s
#        (wrk resumes the previous session on every reconnect; the handshakes each target
#        completed in full and resumed are counted and shown)
#   t2f  full handshakes only: T2F_CLIENTS x `openssl s_time -new -www /` in parallel       connections/s
#   t3   1 MiB responses over TLS: wrk -t1 -c10 https://.../big                         MB/s
#   t4   RSS per idle TLS keep-alive connection: idle_conns.py --tls, IDLE_TLS_CONNS      KiB/conn
#   t5   plain HTTP sanity, as compare.sh (a): wrk -t1 -c50 --latency http://.../        req/s, p99
#
# Environment (all optional):
#   DURATION=10        seconds per measurement (wrk, s_time)
#   WARMUP=1           seconds of wrk warm-up per target before each measurement (0 = none)
#   ROUNDS=3           measurements per target, alternating between targets; medians reported
#   ONLY=t1,t2,t2f,t3,t4,t5
#   TARGETS=haproxy,nginx,switchyard
#   IDLE_TLS_CONNS=5000  idle TLS keep-alive connections in t4
#   SETTLE=2           seconds after the last idle connection before reading RSS (t4)
#   SOURCES=4          client source addresses for t4: 127.0.0.2 .. 127.0.0.(1+SOURCES)
#   T2F_CLIENTS=8      parallel `openssl s_time` processes in t2f
#   BASELINE=path      another Switchyard binary (e.g. the previous commit's) measured beside
#                      Switchyard in every wrk scenario (t1, t3, t5)
#   PIN=1              proxy on CPU 1, load generators on CPU 0 (default: no pinning)
#   SWITCHYARD=path    Switchyard binary (default .build/release/switchyard, built if missing)
#   NO_BUILD=1         never run swift build; skip Switchyard if the binary is missing
#   KEEP=1             keep the temp dir (certificate, configs, logs, raw outputs)
#
# Progress goes to stderr; the result tables go to stdout.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
ONLY=${ONLY:-t1,t2,t2f,t3,t4,t5}
TARGETS=${TARGETS:-haproxy,nginx,switchyard}
IDLE_TLS_CONNS=${IDLE_TLS_CONNS:-5000}
SETTLE=${SETTLE:-2}
SOURCES=${SOURCES:-4}
T2F_CLIENTS=${T2F_CLIENTS:-8}
BASELINE=${BASELINE:-}

for v in DURATION ROUNDS WARMUP IDLE_TLS_CONNS SETTLE SOURCES T2F_CLIENTS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((DURATION > 0 && ROUNDS > 0 && IDLE_TLS_CONNS > 0 && T2F_CLIENTS > 0)) ||
  die "DURATION, ROUNDS, IDLE_TLS_CONNS and T2F_CLIENTS must be > 0"
for s in ${ONLY//,/ }; do
  [[ $s =~ ^(t1|t2|t2f|t3|t4|t5)$ ]] || die "ONLY takes a comma list of t1,t2,t2f,t3,t4,t5 (got '$ONLY')"
done
for t in ${TARGETS//,/ }; do
  [[ $t =~ ^(haproxy|nginx|switchyard)$ ]] || die "unknown target '$t' (haproxy, nginx, switchyard)"
done
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE=$BASELINE is not an executable file"

want() { [[ ",$ONLY," == *",$1,"* ]]; }

# Mozilla "intermediate" (TLS 1.2 part), the list Switchyard uses by default. The TLS 1.3 suites
# are intermediate's three in OpenSSL's default order, which Switchyard and NGINX keep: with
# HAProxy's server preference every target then picks the same suite for the same client.
TLS12_CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
TLS13_SUITES="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

bench_init
command -v openssl >/dev/null 2>&1 || die "openssl (the command line tool) not found"
resolve_switchyard

# --- the certificate: one ECDSA P-256 key and self-signed certificate for every target ----------

TLS_DIR="$TMP_DIR/tls"
CERT="$TLS_DIR/cert.pem"
KEY="$TLS_DIR/key.pem"
COMBINED="$TLS_DIR/combined.pem" # certificate then key, as HAProxy's `crt` wants
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$KEY" -out "$CERT" >"$TLS_DIR/openssl.log" 2>&1 || die "openssl req failed: $(tail -n3 "$TLS_DIR/openssl.log")"
cat "$CERT" "$KEY" >"$COMBINED"
chmod 600 "$KEY" "$COMBINED"

# --- the origin server (plain HTTP: / small, /big 1 MiB) ------------------------------------------

UP_PORT=$(free_ports 1)
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "upstream nginx did not start: $(log_tail upstream 5) $(cat "$TMP_DIR/upstream.err" 2>/dev/null)"

{
  echo "Switchyard TLS benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
  echo "  $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}'), $(haproxy -v | head -n1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version | awk '{print $1, $2}')"
  echo "  certificate (every target): ECDSA P-256, self-signed, CN=localhost, made with the openssl CLI; no client verifies it"
  echo "  TLS 1.2 and 1.3; TLS 1.2 ciphers: Mozilla intermediate; TLS 1.3 suites: $TLS13_SUITES; ALPN http/1.1; tickets and a session cache on every target"
  if [[ ${PIN:-0} == 1 ]]; then
    echo "  PIN=1: proxy on CPU 1, wrk / s_time / the idle client on CPU 0, origin nginx unpinned"
  else
    echo "  no CPU pinning: the load generator, the proxy and the origin nginx share the $(nproc) CPUs (PIN=1 to pin)"
  fi
  echo "  origin: nginx (1 worker, plain HTTP) on 127.0.0.1:$UP_PORT; ulimit -n $NOFILE; switchyard: ${SY_BIN:-SKIPPED ($SY_SKIP)}"
  [[ -n $BASELINE ]] && echo "  baseline switchyard (t5): $BASELINE"
  load_note
} >"$TMP_DIR/header.txt"
cat "$TMP_DIR/header.txt" >&2
[[ -n $SY_BIN ]] || log "switchyard: SKIPPED in every scenario: $SY_SKIP"

# --- proxy configs --------------------------------------------------------------------------------

# write_haproxy_tls_conf FILE PORT UPPORT SOCKET: lib.sh's HAProxy config with the listener made TLS,
# the TLS defaults in `global`, and a stats socket (TLS handshake counters).
write_haproxy_tls_conf() {
  local file=$1 port=$2 up=$3 sock=$4
  write_haproxy_conf "$file" "$port" "$up"
  grep -qx "    bind 127.0.0.1:$port" "$file" || die "write_haproxy_conf has no 'bind 127.0.0.1:$port' line to make TLS"
  awk -v port="$port" -v crt="$COMBINED" -v sock="$sock" -v c12="$TLS12_CIPHERS" -v c13="$TLS13_SUITES" '
    $0 == "global" {
      print
      print "    stats socket " sock " mode 600 level user"
      print "    ssl-default-bind-ciphers " c12
      print "    ssl-default-bind-ciphersuites " c13
      print "    ssl-default-bind-options ssl-min-ver TLSv1.2"
      next
    }
    $0 == "    bind 127.0.0.1:" port { print $0 " ssl crt " crt " alpn http/1.1"; next }
    { print }' "$file" >"$file.tmp" && mv "$file.tmp" "$file"
}

# The NGINX TLS target is lib.sh's proxy config with a second, TLS listener in the same server.
nginx_tls_http() {
  cat <<EOF
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $TLS12_CIPHERS;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets on;
EOF
}

# write_switchyard_tls_conf FILE PORT ADMINPORT: a TLS listener and the admin listener (/metrics:
# handshake counters); otherwise lib.sh's write_switchyard_conf.
write_switchyard_tls_conf() {
  cat >"$1" <<EOF
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$2", "tls": { "certificates": [ { "cert": "$CERT", "key": "$KEY" } ] } } ],
  "admin": { "address": "127.0.0.1:$3" },
  "limits": { "maxConnections": 20000 },
  "upstreams": { "app": { "endpoints": ["127.0.0.1:$UP_PORT"] } },
  "routes": [ { "name": "all", "upstream": "app" } ]
}
EOF
}

# --- targets ----------------------------------------------------------------------------------------

TARGET_PID="" TARGET_PORT="" RSS_PID="" RSS_DESC="" HS_KIND="" HS_ARG="" SKIP_REASON=""

# start_target TARGET TAG MODE (tls | plain): sets TARGET_PID TARGET_PORT RSS_PID RSS_DESC and
# HS_KIND/HS_ARG (where to read the TLS handshake counters), or returns 1 with SKIP_REASON.
# TARGET "baseline" is Switchyard run from $BASELINE (plain only).
start_target() {
  local t=$1 mode=$3 name="$1-$2" ports plain aport bin
  TARGET_PID="" TARGET_PORT="" RSS_PID="" RSS_DESC="" HS_KIND="" HS_ARG="" SKIP_REASON=""
  case $t in
    haproxy)
      TARGET_PORT=$(free_ports 1)
      if [[ $mode == tls ]]; then
        write_haproxy_tls_conf "$TMP_DIR/$name.cfg" "$TARGET_PORT" "$UP_PORT" "$TMP_DIR/$name.sock"
        HS_KIND=haproxy HS_ARG="$TMP_DIR/$name.sock"
      else
        write_haproxy_conf "$TMP_DIR/$name.cfg" "$TARGET_PORT" "$UP_PORT"
      fi
      spawn "$name" "${PROXY_PREFIX[@]}" haproxy -db -f "$TMP_DIR/$name.cfg"
      TARGET_PID=$LAST_PID RSS_PID=$LAST_PID RSS_DESC="haproxy process"
      if ! wait_port "$TARGET_PORT" "$TARGET_PID"; then
        SKIP_REASON="haproxy failed to start: $(log_tail "$name")"
        stop_target
        return 1
      fi
      ;;
    nginx)
      if [[ $mode == tls ]]; then
        ports=$(free_ports 2)
        plain=${ports%%$'\n'*} TARGET_PORT=${ports##*$'\n'}
        write_nginx_proxy_conf "$name" "$plain" "$UP_PORT" "$(nginx_tls_http)" "" \
          "        listen 127.0.0.1:$TARGET_PORT ssl backlog=4096;"
      else
        TARGET_PORT=$(free_ports 1)
        write_nginx_proxy_conf "$name" "$TARGET_PORT" "$UP_PORT"
      fi
      if ! start_nginx "$name" "$TARGET_PORT" pin; then
        TARGET_PID=$LAST_PID
        SKIP_REASON="nginx failed to start: $(log_tail "$name") $(tail -n2 "$TMP_DIR/$name.err" 2>/dev/null | tr '\n' ' ')"
        stop_target
        return 1
      fi
      TARGET_PID=$LAST_PID RSS_PID=$LAST_WORKER RSS_DESC="nginx worker only"
      ;;
    switchyard | baseline)
      bin=$SY_BIN
      [[ $t == baseline ]] && bin=$BASELINE
      if [[ -z $bin ]]; then SKIP_REASON=$SY_SKIP; return 1; fi
      if [[ $mode == tls ]]; then
        ports=$(free_ports 2)
        TARGET_PORT=${ports%%$'\n'*} aport=${ports##*$'\n'}
        write_switchyard_tls_conf "$TMP_DIR/$name.json" "$TARGET_PORT" "$aport"
        HS_KIND=metrics HS_ARG=$aport
      else
        TARGET_PORT=$(free_ports 1)
        write_switchyard_conf "$TMP_DIR/$name.json" "$TARGET_PORT" \
          "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }" \
          '{ "name": "all", "upstream": "app" }'
      fi
      SY_BIN=$bin start_switchyard "$name" "$TMP_DIR/$name.json" "$TARGET_PORT" || return 1
      TARGET_PID=$LAST_PID RSS_PID=$LAST_PID RSS_DESC="switchyard process"
      ;;
  esac
}

stop_target() {
  [[ -n $TARGET_PID ]] && kill_tree "$TARGET_PID"
  TARGET_PID=""
}

skip() { # SCENARIO TARGET
  record "$1" "$2" skip "$SKIP_REASON"
  log "($1) $2: SKIPPED: $SKIP_REASON"
}

# handshakes KIND ARG: "full=N resumed=N" (cumulative), or nothing when the target has no counters.
handshakes() {
  [[ -n $1 ]] || return 0
  "$PY" "$BENCH_DIR/tlsinfo.py" "$1" "$2" 2>/dev/null | grep -E '^full=' || true
}

# record_handshakes SCENARIO TARGET BEFORE AFTER: the handshakes completed between two samples;
# HS_NOTE says how many, for the progress line.
HS_NOTE=""
record_handshakes() {
  local b=$3 a=$4 bf br af ar
  HS_NOTE=""
  [[ $b == full=* && $a == full=* ]] || return 0
  bf=${b#full=} bf=${bf%% *} br=${b##*resumed=}
  af=${a#full=} af=${af%% *} ar=${a##*resumed=}
  record "$1" "$2" hs_full "$((af - bf))"
  record "$1" "$2" hs_resumed "$((ar - br))"
  HS_NOTE=" | handshakes: $((af - bf)) full, $((ar - br)) resumed"
}

# probe SCENARIO TARGET PORT [--http10]: one request; records what was negotiated and the status.
probe() {
  local out
  out=$("$PY" "$BENCH_DIR/tlsinfo.py" probe "$3" ${4:+"$4"} 2>&1 | tail -n1)
  record "$1" "$2" negotiated "$out"
  [[ $out == *status=200* ]] || record "$1" "$2" note "probe ${4:-}: $out"
}

wrk_line() {
  awk '/Requests\/sec/ {r = $2 " req/s"} /Transfer\/sec/ {b = $2 "/s"} /^ +99%/ {p = "p99 " $2}
       /Non-2xx|Socket errors/ {e = e " |" $0} END {printf "%s, %s, %s%s", r, b, p, e}' "$1"
}

# All targets of a scenario run side by side (idle ones cost nothing); the measurements alternate
# between targets ROUNDS times and the report takes the median, so a change in background load
# hits every target alike.
scenario_wrk() { # SCENARIO MODE PATH CONNS [WRK-ARGS...]
  local s=$1 mode=$2 path=$3 conns=$4 t r url out scheme=https before after
  shift 4
  [[ $mode == plain ]] && scheme=http
  local -a targets=(${TARGETS//,/ })
  [[ -n $BASELINE ]] && targets+=(baseline)
  local -A port=() pid=() hk=() ha=()
  for t in "${targets[@]}"; do
    if start_target "$t" "$s" "$mode"; then
      port[$t]=$TARGET_PORT pid[$t]=$TARGET_PID hk[$t]=$HS_KIND ha[$t]=$HS_ARG
      [[ $mode == tls ]] && probe "$s" "$t" "$TARGET_PORT"
    else
      skip "$s" "$t"
    fi
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${targets[@]}"; do
      [[ -n ${port[$t]:-} ]] || continue
      url="$scheme://127.0.0.1:${port[$t]}$path"
      out="$TMP_DIR/$s-$t-$r.txt"
      warmup "$url" "$conns"
      before=$(handshakes "${hk[$t]}" "${ha[$t]}")
      run_wrk "$out" -t1 -c"$conns" -d"${DURATION}s" --latency "$@" "$url"
      after=$(handshakes "${hk[$t]}" "${ha[$t]}")
      "$PY" "$BENCH_DIR/wrkparse.py" "$out" "$s" "$t" >>"$RESULTS"
      record_handshakes "$s" "$t" "$before" "$after"
      log "($s) $t round $r/$ROUNDS: $(wrk_line "$out")$HS_NOTE"
      died_in_round "$s" "$t" "$r" "${pid[$t]}" && unset "port[$t]"
    done
  done
  for t in "${!pid[@]}"; do [[ -n ${pid[$t]} ]] && kill_tree "${pid[$t]}"; done
  return 0
}

# --- t2f: full handshakes only ------------------------------------------------------------------------

# `openssl s_time -new` makes a new SSL object for every connection and offers no session, so
# every connection is a full handshake; it sends "GET / HTTP/1.0" and reads until the server
# closes. One s_time runs one connection at a time: T2F_CLIENTS of them run in parallel. The rate
# is the connections they all completed over the wall time from the first start to the last exit.
scenario_t2f() {
  local s=t2f t r i url t0 t1 n total before after failed
  local -a targets=(${TARGETS//,/ }) clients=()
  local -A port=() pid=() hk=() ha=()
  for t in "${targets[@]}"; do
    if start_target "$t" "$s" tls; then
      port[$t]=$TARGET_PORT pid[$t]=$TARGET_PID hk[$t]=$HS_KIND ha[$t]=$HS_ARG
      probe "$s" "$t" "$TARGET_PORT" --http10
    else
      skip "$s" "$t"
    fi
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${targets[@]}"; do
      [[ -n ${port[$t]:-} ]] || continue
      warmup "https://127.0.0.1:${port[$t]}/" 50
      before=$(handshakes "${hk[$t]}" "${ha[$t]}")
      clients=()
      t0=$(date +%s.%N)
      for ((i = 1; i <= T2F_CLIENTS; i++)); do
        spawn "t2f-$t-$r-$i" "${WRK_PREFIX[@]}" openssl s_time -connect "127.0.0.1:${port[$t]}" -new -www / -time "$DURATION"
        clients+=("$LAST_PID")
      done
      for ((i = 0; i < (DURATION + 30) * 10; i++)); do
        n=0
        for p in "${clients[@]}"; do alive "$p" && n=$((n + 1)); done
        ((n == 0)) && break
        sleep 0.1
      done
      t1=$(date +%s.%N)
      for p in "${clients[@]}"; do kill_tree "$p"; done
      after=$(handshakes "${hk[$t]}" "${ha[$t]}")
      total=0 failed=0
      for ((i = 1; i <= T2F_CLIENTS; i++)); do
        n=$(sed -n 's/^\([0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$TMP_DIR/t2f-$t-$r-$i.log" | tail -n1)
        if [[ -z $n ]]; then
          failed=$((failed + 1))
          record "$s" "$t" note "round $r: s_time $i failed: $(log_tail "t2f-$t-$r-$i" 2)"
        else
          total=$((total + n))
        fi
      done
      record "$s" "$t" conns "$total"
      record "$s" "$t" seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
      record "$s" "$t" cps "$(awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / (b - a)}')"
      record "$s" "$t" errors "$failed"
      record_handshakes "$s" "$t" "$before" "$after"
      log "($s) $t round $r/$ROUNDS: $(awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN {printf "%d connections in %.2f s: %.0f conn/s", n, b - a, n / (b - a)}')$HS_NOTE"
      died_in_round "$s" "$t" "$r" "${pid[$t]}" && unset "port[$t]"
    done
  done
  for t in "${!pid[@]}"; do [[ -n ${pid[$t]} ]] && kill_tree "${pid[$t]}"; done
  return 0
}

# --- t4: RSS per idle TLS keep-alive connection ----------------------------------------------------

# As compare.sh (c), over TLS: each proxy started fresh and warmed, RSS sampled, IDLE_TLS_CONNS
# connections opened (a full handshake and one GET each), then held; RSS sampled SETTLE s after the
# last one completed. Rounds alternate between the targets, each round on a fresh process.
scenario_t4() {
  local s=t4 t r before after ok failed alive_n line cpid i hold=$((SETTLE + 3)) name
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in ${TARGETS//,/ }; do
      log "($s) $t round $r/$ROUNDS: $IDLE_TLS_CONNS idle TLS keep-alive connections"
      start_target "$t" "$s" tls || { skip "$s" "$t"; continue; }
      ((r == 1)) && probe "$s" "$t" "$TARGET_PORT"
      warmup "https://127.0.0.1:$TARGET_PORT/" 2
      sleep 1
      before=$(rss_kib "$RSS_PID")
      name="idle-$t-$r"
      spawn "$name" "${WRK_PREFIX[@]}" "$PY" "$BENCH_DIR/idle_conns.py" --tls --port "$TARGET_PORT" \
        --count "$IDLE_TLS_CONNS" --hold "$hold" --sources "$SOURCES"
      cpid=$LAST_PID
      line=""
      for ((i = 0; i < 1800; i++)); do # up to 180 s to open them all
        line=$(grep -m1 '^READY' "$TMP_DIR/$name.log" 2>/dev/null || true)
        [[ -n $line ]] && break
        alive "$cpid" || break
        sleep 0.1
      done
      if [[ -z $line ]]; then
        record "$s" "$t" error "idle client never got ready: $(log_tail "$name")"
        log "($s) $t: idle client failed: $(log_tail "$name")"
        kill_tree "$cpid"
        stop_target
        continue
      fi
      sleep "$SETTLE"
      after=$(rss_kib "$RSS_PID")
      for ((i = 0; i < (hold + 15) * 10; i++)); do
        grep -q '^DONE' "$TMP_DIR/$name.log" 2>/dev/null && break
        alive "$cpid" || break
        sleep 0.1
      done
      kill_tree "$cpid"
      ok=$(sed -n 's/^READY.* ok=\([0-9]*\).*/\1/p' "$TMP_DIR/$name.log")
      failed=$(sed -n 's/^READY.* failed=\([0-9]*\).*/\1/p' "$TMP_DIR/$name.log")
      alive_n=$(sed -n 's/^DONE alive=\([0-9]*\).*/\1/p' "$TMP_DIR/$name.log")
      record "$s" "$t" rss_before_kib "${before:-0}"
      record "$s" "$t" rss_after_kib "${after:-0}"
      record "$s" "$t" conns_ok "${ok:-0}"
      record "$s" "$t" conns_failed "${failed:-0}"
      record "$s" "$t" conns_alive "${alive_n:-?}"
      record "$s" "$t" rss_of "$RSS_DESC"
      if [[ -n $before && -n $after && ${ok:-0} -gt 0 ]]; then
        record "$s" "$t" kib_per_conn "$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.3f", (a - b) / n}')"
      fi
      [[ ${ok:-0} == "$IDLE_TLS_CONNS" ]] || log "($s) $t: only ${ok:-0} of $IDLE_TLS_CONNS connections completed their request ($line)"
      if [[ -n $TARGET_PID ]] && ! alive "$TARGET_PID"; then
        record "$s" "$t" note "process died during round $r: $(log_tail "$t-$s")"
      fi
      log "($s) $t round $r/$ROUNDS: RSS $before -> $after KiB, ${ok:-0} ok / ${failed:-0} failed / ${alive_n:-?} alive: $(awk -v a="$after" -v b="$before" -v n="${ok:-0}" 'BEGIN {if (n > 0) printf "%.2f KiB/conn", (a - b) / n}')"
      stop_target
    done
  done
}

want t1 && log "(t1) HTTPS keep-alive, small responses: wrk -t1 -c50 -d${DURATION}s --latency https://.../, $ROUNDS round(s)"
want t1 && scenario_wrk t1 tls / 50
want t2 && log "(t2) new TLS connection per request: wrk -t1 -c50 -d${DURATION}s -H 'Connection: close' https://.../, $ROUNDS round(s)"
want t2 && scenario_wrk t2 tls / 50 -H "Connection: close"
want t2f && log "(t2f) full handshakes: $T2F_CLIENTS x openssl s_time -new -www / -time $DURATION, $ROUNDS round(s)"
want t2f && scenario_t2f
want t3 && log "(t3) 1 MiB responses over TLS: wrk -t1 -c10 -d${DURATION}s --latency https://.../big, $ROUNDS round(s)"
want t3 && scenario_wrk t3 tls /big 10
want t4 && scenario_t4
want t5 && log "(t5) plain HTTP, small responses: wrk -t1 -c50 -d${DURATION}s --latency http://.../, $ROUNDS round(s)"
want t5 && scenario_wrk t5 plain / 50

cat "$TMP_DIR/header.txt"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
DURATION=$DURATION ROUNDS=$ROUNDS IDLE_TLS_CONNS=$IDLE_TLS_CONNS T2F_CLIENTS=$T2F_CLIENTS \
  "$PY" "$BENCH_DIR/report_tls.py" "$RESULTS"
