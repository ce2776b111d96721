#!/usr/bin/env bash
# What SigV4 signing (upstreams.NAME.auth.aws) costs: the same Switchyard binary, one worker
# each, twice in front of one nginx origin, once unsigned ("plain") and once signing every
# request with made-up credentials ("signed": nginx does not check them), in one run,
# alternating, medians.
#   (get)  small keep-alive GETs: req/s of each and signed/plain. Bar: signed >= 0.90x plain.
#          Also each proxy's CPU time (user + system) per request: steadier than req/s when
#          other processes load the machine.
#   (post) 1 MiB POSTs at low concurrency: p50 and p99 latency of each and what signing adds
#          (a signed body is read whole and hashed before the request goes; a plain one streams).
#
#   bash Benchmarks/signing.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/signing.sh
#
# Environment (all optional): DURATION=10 (seconds per wrk run), ROUNDS=3, CONNS=50 (GETs),
# POST_CONNS=4, POST_BYTES=1048576, SWITCHYARD=path (default .build/release/switchyard, built if
# missing), PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
POST_CONNS=${POST_CONNS:-4}
POST_BYTES=${POST_BYTES:-1048576}
for v in DURATION ROUNDS CONNS POST_CONNS POST_BYTES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r UP_PORT PLAIN_PORT SIGNED_PORT <<<"$(free_ports 3 | tr '\n' ' ')"
# "/" answers "ok\n" to a GET and to a POST alike (nginx reads and drops the body).
write_upstream_conf upstream "$UP_PORT" "    client_max_body_size $((POST_BYTES + 1048576));"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"

write_switchyard_conf "$TMP_DIR/plain.json" "$PLAIN_PORT" \
  "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }" '{ "name": "all", "upstream": "app" }'
write_switchyard_conf "$TMP_DIR/signed.json" "$SIGNED_PORT" \
  "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"],
       \"auth\": { \"aws\": { \"service\": \"lambda\", \"region\": \"eu-west-1\", \"maxBodyBytes\": $((POST_BYTES * 2)) } } } }" \
  '{ "name": "all", "upstream": "app" }'
export AWS_ACCESS_KEY_ID=AKIDSWITCHYARDBENCH AWS_SECRET_ACCESS_KEY=switchyard-benchmark-secret
unset AWS_SESSION_TOKEN AWS_PROFILE
start_switchyard plain "$TMP_DIR/plain.json" "$PLAIN_PORT" || die "switchyard (plain): $SKIP_REASON"
PLAIN_PID=$LAST_PID
start_switchyard signed "$TMP_DIR/signed.json" "$SIGNED_PORT" || die "switchyard (signed): $SKIP_REASON"
SIGNED_PID=$LAST_PID
TICK_US=$((1000000 / $(getconf CLK_TCK)))

echo "Switchyard signing cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, 1 worker each," \
  "$ROUNDS alternating rounds of ${DURATION}s, medians"
echo "  binary: $SY_BIN"
load_note

declare -A RPS P50 P99 CPU
# measure SCENARIO ROUND MODE WRK-ARGS...: one wrk run, its row printed and its figures kept.
measure() {
  local s=$1 r=$2 mode=$3 out rows pid=$PLAIN_PID before requests cpu
  shift 3
  [[ $mode == signed ]] && pid=$SIGNED_PID
  out="$TMP_DIR/$s-$mode-$r.txt"
  before=$(cpu_ticks "$pid")
  run_wrk "$out" "$@"
  rows=$("$PY" "$BENCH_DIR/wrkparse.py" "$out" "$s" "$mode")
  requests=$(awk -F'\t' '$3 == "requests" {print $4}' <<<"$rows")
  cpu=$(awk -v t="$(($(cpu_ticks "$pid") - before))" -v n="${requests:-0}" -v us="$TICK_US" 'BEGIN {if (n > 0) printf "%.2f", t * us / n}')
  rps=$(awk -F'\t' '$3 == "rps" {printf "%.0f", $4}' <<<"$rows")
  p50=$(awk -F'\t' '$3 == "p50_ms" {print $4}' <<<"$rows")
  p99=$(awk -F'\t' '$3 == "p99_ms" {print $4}' <<<"$rows")
  errors=$(awk -F'\t' '$3 == "errors" || $3 == "non2xx" {n += $4} $3 == "error" {print "wrk failed"} END {if (n) print n " errors"}' <<<"$rows")
  RPS[$s-$mode]+="${rps:-} " P50[$s-$mode]+="${p50:-} " P99[$s-$mode]+="${p99:-} " CPU[$s-$mode]+="${cpu:-} "
  printf '  %-5s %-5s %-7s %10s %10s %10s %11s  %s\n' "$s" "$r" "$mode" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${cpu:-?}" "$errors"
}

# rounds SCENARIO PATH WRK-OPTIONS...: ROUNDS alternating measurements of each mode.
rounds() {
  local s=$1 path=$2 mode r port order
  shift 2
  for mode in plain signed; do
    port=$PLAIN_PORT
    [[ $mode == signed ]] && port=$SIGNED_PORT
    warmup "http://127.0.0.1:$port$path" "$CONNS"
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate which goes first, so a drift in the machine's load does not favour one.
    order=(plain signed)
    ((r % 2 == 0)) && order=(signed plain)
    for mode in "${order[@]}"; do
      port=$PLAIN_PORT
      [[ $mode == signed ]] && port=$SIGNED_PORT
      measure "$s" "$r" "$mode" "$@" "http://127.0.0.1:$port$path"
    done
  done
}

printf '  %-5s %-5s %-7s %10s %10s %10s %11s\n' test round mode req/s p50_ms p99_ms cpu_us/req
rounds get / -t1 -c"$CONNS" -d"${DURATION}s" --latency
export POST_BYTES # read by post_body.lua
WARMUP=0 rounds post / -t1 -c"$POST_CONNS" -d"${DURATION}s" --latency -s "$BENCH_DIR/post_body.lua"

plain=$(median "${RPS[get-plain]}")
signed=$(median "${RPS[get-signed]}")
echo
echo "  small GETs, median req/s: plain $plain, signed $signed; signed/plain =" \
  "$(awk -v a="$signed" -v b="$plain" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') (bar >= 0.90)"
plain=$(median "${CPU[get-plain]}")
signed=$(median "${CPU[get-signed]}")
echo "  small GETs, median proxy CPU per request: plain $plain us, signed $signed us; plain/signed =" \
  "$(awk -v a="$signed" -v b="$plain" 'BEGIN {printf "%.3f", (a > 0 ? b / a : 0)}')"
for q in 50 99; do
  declare -n lat="P$q"
  a=$(median "${lat[post-plain]}")
  b=$(median "${lat[post-signed]}")
  echo "  $POST_BYTES-byte POSTs (-c$POST_CONNS), median p$q: plain $a ms, signed $b ms; signing adds" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}') ms"
  unset -n lat
done
