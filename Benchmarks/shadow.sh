#!/usr/bin/env bash
# What shadow comparison costs: the same Switchyard binary in front of one nginx origin, every
# request mirrored (100%) to a second nginx, with `"compare": { "status": true, "latency": true }`
# on the mirror ("compare") against the same mirror without it ("mirror"), in one run,
# alternating, medians. Bar: compare >= 0.95x mirror req/s.
#
#   bash Benchmarks/shadow.sh
#   DURATION=3 ROUNDS=3 bash Benchmarks/shadow.sh
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

read -r UP_PORT SHADOW_PORT MIRROR_PORT COMPARE_PORT ADMIN_PORT <<<"$(free_ports 5 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT"
write_upstream_conf shadow "$SHADOW_PORT"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"
start_nginx shadow "$SHADOW_PORT" || die "shadow nginx did not start: $(log_tail shadow 5)"

UPSTREAMS="{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] },
    \"shadow\": { \"endpoints\": [\"127.0.0.1:$SHADOW_PORT\"], \"maxInFlight\": 100000 } }"
MIRROR='{ "name": "all", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }'
COMPARE='{ "name": "all", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100,
    "compare": { "status": true, "latency": true } } ] }'
write_switchyard_conf "$TMP_DIR/mirror.json" "$MIRROR_PORT" "$UPSTREAMS" "$MIRROR"
write_switchyard_conf "$TMP_DIR/compare.json" "$COMPARE_PORT" "$UPSTREAMS" "$COMPARE"
sed -i "s/\"workers\": 1/\"workers\": $WORKERS/" "$TMP_DIR/mirror.json" "$TMP_DIR/compare.json"
sed -i "s|\"routes\"|\"admin\": { \"address\": \"127.0.0.1:$ADMIN_PORT\" },\n  \"routes\"|" "$TMP_DIR/compare.json"

start_switchyard mirror "$TMP_DIR/mirror.json" "$MIRROR_PORT" || die "switchyard (mirror): $SKIP_REASON"
start_switchyard compare "$TMP_DIR/compare.json" "$COMPARE_PORT" || die "switchyard (compare): $SKIP_REASON"
wait_port "$ADMIN_PORT" || die "the admin listener did not open"

echo "Switchyard shadow comparison cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $WORKERS worker(s)," \
  "wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS alternating rounds, every request mirrored"
echo "  binary: $SY_BIN"
load_note
warmup "http://127.0.0.1:$MIRROR_PORT/" "$CONNS"
warmup "http://127.0.0.1:$COMPARE_PORT/" "$CONNS"

declare -A RPS
printf '  %-5s %-8s %10s %9s %9s\n' round mode req/s p50 p99
for ((r = 1; r <= ROUNDS; r++)); do
  # Alternate which goes first, so a drift in the machine's load does not favour one.
  order=(mirror compare)
  ((r % 2 == 0)) && order=(compare mirror)
  for mode in "${order[@]}"; do
    port=$MIRROR_PORT
    [[ $mode == compare ]] && port=$COMPARE_PORT
    out="$TMP_DIR/$mode-$r.txt"
    run_wrk "$out" -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/"
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    RPS[$mode]+="${rps:-0} "
    printf '  %-5s %-8s %10s %9s %9s\n' "$r" "$mode" "${rps:-?}" "${p50:-?}" "${p99:-?}"
  done
done

mirror=$(median "${RPS[mirror]}")
compare=$(median "${RPS[compare]}")
metrics=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics")
compared=$(awk '$1 ~ /^switchyard_shadow_comparisons_total/ {s += $2} END {print s + 0}' <<<"$metrics")
completed=$(awk '$1 == "switchyard_mirror_completed_total" {print $2}' <<<"$metrics")
dropped=$(awk '$1 == "switchyard_mirror_dropped_total" {print $2}' <<<"$metrics")
echo
echo "  median req/s: mirror $mirror, compare $compare; compare/mirror =" \
  "$(awk -v a="$compare" -v b="$mirror" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') (bar >= 0.95)"
echo "  compare proxy: $compared comparisons, ${completed:-?} copies answered, ${dropped:-?} dropped"
