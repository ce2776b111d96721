#!/usr/bin/env bash
# How evenly Switchyard's workers share the load: one Switchyard with 2 workers in front of one
# nginx origin, under three loads, printing req/s and each worker thread's share of the CPU the
# workers used. Written to choose between one listening socket shared by every loop
# (EPOLLEXCLUSIVE) and a socket per worker (SO_REUSEPORT); point SWITCHYARD at a build of each.
#
#   bash Benchmarks/workers.sh
#   SWITCHYARD=/path/to/other/switchyard ROUNDS=3 bash Benchmarks/workers.sh
#
# Environment (all optional): DURATION=5 (seconds per wrk run), ROUNDS=1, WORKERS=2,
# SWITCHYARD=path (default .build/release/switchyard, built if missing), KEEP=1.
#
# Loads (wrk -t2):
#   keepalive-c100   100 keep-alive connections
#   keepalive-c4     4 keep-alive connections, opened together (a small client pool)
#   churn-c100       100 connections, each closed after one request (accept-heavy)
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-2}
for v in DURATION ROUNDS WORKERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r UP_PORT SY_PORT <<<"$(free_ports 2 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"
write_switchyard_conf "$TMP_DIR/sy.json" "$SY_PORT" "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }" \
  '{ "name": "all", "upstream": "app" }'
sed -i "s/\"workers\": 1/\"workers\": $WORKERS/" "$TMP_DIR/sy.json"
start_switchyard switchyard "$TMP_DIR/sy.json" "$SY_PORT" || die "switchyard: $SKIP_REASON"
SY_PID=$LAST_PID

# CPU ticks (user + system) of every thread of the proxy, as "tid ticks" lines.
thread_ticks() {
  local t
  for t in /proc/"$SY_PID"/task/*; do
    echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
  done
}

echo "Switchyard workers: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $WORKERS workers, wrk -t2 -d${DURATION}s"
echo "  binary: $SY_BIN"
load_note
printf '  %-16s %-6s %10s  %s\n' load round req/s "worker CPU shares (busiest first)"
for ((r = 1; r <= ROUNDS; r++)); do
  for load in keepalive-c100 keepalive-c4 churn-c100; do
    conns=${load##*-c}
    extra=()
    [[ $load == churn-* ]] && extra=(-H "Connection: close")
    before=$(thread_ticks)
    out="$TMP_DIR/$load-$r.txt"
    run_wrk "$out" -t2 -c"$conns" -d"${DURATION}s" "${extra[@]}" "http://127.0.0.1:$SY_PORT/"
    after=$(thread_ticks)
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$out")
    # The $WORKERS busiest threads are the loops; the rest (signals, control) barely run.
    shares=$(join <(sort <<<"$before") <(sort <<<"$after") | awk '{print $3 - $2}' | sort -rn | head -n "$WORKERS" |
      awk '{v[NR] = $1; s += $1} END {for (i = 1; i <= NR; i++) printf "%s%d%%", (i > 1 ? " / " : ""), (s ? 100 * v[i] / s : 0); print ""}')
    printf '  %-16s %-6s %10s  %s\n' "$load" "$r" "${rps:-?}" "$shares"
  done
done
