#!/usr/bin/env bash
# What seeing every variant costs: the same Switchyard binary in front of one nginx origin, with
# the access log (to a file, every request) and the admin listener scraped once a second ("on"),
# against both off ("off"), in one run, alternating, medians. Bar: on >= 0.90x off req/s.
# The per-loop metric slots are counted in both (they cannot be turned off); "off" leaves out the
# access log, the admin listener and the scrapes.
#
#   bash Benchmarks/observability.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/observability.sh
#
# Environment (all optional): DURATION=10 (seconds per wrk run), ROUNDS=3, CONNS=50, WORKERS=1,
# SWITCHYARD=path (default .build/release/switchyard, built if missing), PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
WORKERS=${WORKERS:-1}
for v in DURATION ROUNDS CONNS WORKERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r UP_PORT OFF_PORT ON_PORT ADMIN_PORT <<<"$(free_ports 4 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"

UPSTREAMS="{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }"
ROUTE='{ "name": "all", "upstream": "app" }'
write_switchyard_conf "$TMP_DIR/off.json" "$OFF_PORT" "$UPSTREAMS" "$ROUTE"
write_switchyard_conf "$TMP_DIR/on.json" "$ON_PORT" "$UPSTREAMS" "$ROUTE"
sed -i "s/\"workers\": 1/\"workers\": $WORKERS/" "$TMP_DIR/off.json" "$TMP_DIR/on.json"
# "on": the access log to a file and the admin listener.
sed -i "s|\"routes\"|\"accessLog\": { \"path\": \"$TMP_DIR/access.log\" },\n  \"admin\": { \"address\": \"127.0.0.1:$ADMIN_PORT\" },\n  \"routes\"|" \
  "$TMP_DIR/on.json"

start_switchyard off "$TMP_DIR/off.json" "$OFF_PORT" || die "switchyard (off): $SKIP_REASON"
start_switchyard on "$TMP_DIR/on.json" "$ON_PORT" || die "switchyard (on): $SKIP_REASON"
wait_port "$ADMIN_PORT" || die "the admin listener did not open"

# scrape SECONDS: GET /metrics once a second, as Prometheus would (in the background).
scrape() {
  local end=$((SECONDS + $1))
  while ((SECONDS < end)); do
    curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/metrics" || true
    sleep 1
  done
}

echo "Switchyard observability cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $WORKERS worker(s)," \
  "wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS alternating rounds"
echo "  binary: $SY_BIN"
load_note
warmup "http://127.0.0.1:$OFF_PORT/" "$CONNS"
warmup "http://127.0.0.1:$ON_PORT/" "$CONNS"

declare -A RPS
printf '  %-5s %-4s %10s %9s %9s\n' round mode req/s p50 p99
for ((r = 1; r <= ROUNDS; r++)); do
  # Alternate which goes first, so a drift in the machine's load does not favour one.
  order=(off on)
  ((r % 2 == 0)) && order=(on off)
  for mode in "${order[@]}"; do
    port=$OFF_PORT
    [[ $mode == on ]] && port=$ON_PORT
    out="$TMP_DIR/$mode-$r.txt"
    scraper=""
    if [[ $mode == on ]]; then
      scrape "$DURATION" &
      scraper=$!
    fi
    run_wrk "$out" -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/"
    [[ -n $scraper ]] && wait "$scraper" 2>/dev/null || true
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    RPS[$mode]+="${rps:-0} "
    printf '  %-5s %-4s %10s %9s %9s\n' "$r" "$mode" "${rps:-?}" "${p50:-?}" "${p99:-?}"
  done
done

off=$(median "${RPS[off]}")
on=$(median "${RPS[on]}")
lines=$(wc -l <"$TMP_DIR/access.log" 2>/dev/null || echo 0)
dropped=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "switchyard_access_log_dropped_total" {print $2}')
echo
echo "  median req/s: off $off, on $on; on/off = $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') (bar >= 0.90)"
echo "  access log: $lines lines written, ${dropped:-?} dropped"
