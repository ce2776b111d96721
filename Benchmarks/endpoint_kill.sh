#!/usr/bin/env bash
# One of two endpoints killed under load: how many requests fail, and when.
#   bar: < 1% of requests fail (non-2xx or socket errors), and none after the first second
#
#   bash Benchmarks/endpoint_kill.sh
#   DURATION=10 KILL_AT=3 bash Benchmarks/endpoint_kill.sh
#
# Two origin nginx instances behind one Switchyard upstream with the retry policy of the README
# ("retries": {"attempts": 2, "on": ["connect", "reset", "503"], "budgetPercent": 20}) and the
# default outlierDetection (5 consecutive failures eject for 10 s, doubling). wrk -t1 -c50 runs
# for DURATION s; at KILL_AT s the second origin is killed (SIGKILL: its connections reset, its
# port refuses). fail_timeline.lua timestamps every non-2xx response; wrk's socket errors are
# counted too (their time is not known: they are reported, and count against the 1% bar).
# Environment (all optional): DURATION=10, KILL_AT=3, HEALTH=1 (add an active health check,
# 500 ms interval), PIN=1, SWITCHYARD=path, NO_BUILD=1, KEEP=1 (as in compare.sh).
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
KILL_AT=${KILL_AT:-3}
for v in DURATION KILL_AT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((KILL_AT + 2 <= DURATION)) || die "KILL_AT must leave at least 2 s of the run (DURATION=$DURATION, KILL_AT=$KILL_AT)"

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "switchyard: $SY_SKIP"

mapfile -t P < <(free_ports 4)
((${#P[@]} == 4)) || die "could not pick free ports"
UP1=${P[0]} UP2=${P[1]} PORT=${P[2]} ADMIN=${P[3]}

write_upstream_conf up1 "$UP1"
start_nginx up1 "$UP1" || die "origin 1 did not start: $(cat "$TMP_DIR/up1.err" 2>/dev/null)"
write_upstream_conf up2 "$UP2"
start_nginx up2 "$UP2" || die "origin 2 did not start: $(cat "$TMP_DIR/up2.err" 2>/dev/null)"
UP2_MASTER=$LAST_PID UP2_WORKER=$LAST_WORKER

check=""
[[ ${HEALTH:-0} == 1 ]] && check=', "healthCheck": { "path": "/", "intervalMs": 500, "timeoutMs": 250, "unhealthyAfter": 2, "healthyAfter": 2 }'
write_switchyard_conf "$TMP_DIR/sy.json" "$PORT" "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP1\", \"127.0.0.1:$UP2\"],
    \"retries\": { \"attempts\": 2, \"on\": [\"connect\", \"reset\", \"503\"], \"budgetPercent\": 20 }$check } }" \
  '{ "name": "all", "upstream": "app" }'
# The admin listener tells what the proxy did: retries, ejections.
sed -i "s|^  \"limits\"|  \"admin\": { \"address\": \"127.0.0.1:$ADMIN\" },\n  \"limits\"|" "$TMP_DIR/sy.json"
start_switchyard sy "$TMP_DIR/sy.json" "$PORT" || die "switchyard: $SKIP_REASON"
warmup "http://127.0.0.1:$PORT/"

{
  echo "Switchyard endpoint-kill benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, wrk -t1 -c50 -d${DURATION}s, second of two endpoints killed at ${KILL_AT} s"
  echo "  switchyard: $SY_BIN${HEALTH:+ (active health check every 500 ms)}"
  load_note
} >&2

export KILL_FILE="$TMP_DIR/killed_at"
(
  sleep "$KILL_AT"
  date +%s.%N >"$KILL_FILE"
  kill -KILL "$UP2_WORKER" "$UP2_MASTER" 2>/dev/null || true
) &
KILLER=$!
OUT="$TMP_DIR/wrk.txt"
run_wrk "$OUT" -t1 -c50 -d"${DURATION}s" --latency -s "$BENCH_DIR/fail_timeline.lua" "http://127.0.0.1:$PORT/"
wait "$KILLER" 2>/dev/null || true

line=$(grep '^timeline:' "$OUT" || true)
[[ -n $line ]] || { cat "$OUT" >&2; die "wrk printed no timeline"; }
get() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" <<<"$line"; }
total=$(get responses) bad=$(get non2xx) first=$(get first_second) later=$(get after_first_second)
sock=$(($(get sockerr_connect) + $(get sockerr_read) + $(get sockerr_write) + $(get sockerr_timeout)))
failed=$((bad + sock))
echo "requests: $total   req/s: $(awk '/Requests\/sec/ {print $2}' "$OUT")   p99: $(awk '/^ +99%/ {print $2}' "$OUT")"
echo "failed: $failed (non-2xx $bad: $(get before_kill) before the kill, $first in the second after it, $later later; socket errors $sock)"
awk -v f="$failed" -v t="$total" -v l="$later" 'BEGIN {
  share = t > 0 ? f / t : 1
  printf "  failed share %.4f%% (bar: < 1%%) %s\n", share * 100, share < 0.01 ? "PASS" : "FAIL"
  printf "  non-2xx after the first second: %d (bar: 0) %s\n", l, l == 0 ? "PASS" : "FAIL"
}'
"$PY" - "$ADMIN" <<'PYEOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
keep = ("switchyard_upstream_retries_total", "switchyard_upstream_policy_retries_total{", "switchyard_upstream_retry_budget",
        "switchyard_endpoint_ejections_total{", "switchyard_endpoint_ejected{", "switchyard_upstream_connect_failures_total")
print("proxy counters:\n" + "\n".join("  " + l for l in text.splitlines() if l.startswith(keep)))
PYEOF
