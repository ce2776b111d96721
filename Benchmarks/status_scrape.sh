#!/usr/bin/env bash
# What looking at the admin listener costs the data path: the same Switchyard binary, one worker
# each, twice in front of one nginx origin, in one run, alternating, medians:
#   quiet    nobody reads its admin listener
#   scraped  /status, /status.json and /metrics fetched every second (a dashboard left open and
#            a Prometheus scraping at 1 s) for the whole run
# Every measurement is `wrk -t1 -cCONNS --latency /` on a plain route (compare.sh's scenario a).
# Bar: scraped >= quiet within noise (the page is built on the admin thread from the counters
# /metrics reads; the workers do nothing for it). Also each proxy's CPU time per request.
#
#   bash Benchmarks/status_scrape.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/status_scrape.sh
#
# Environment (all optional): DURATION=10, ROUNDS=3, CONNS=50, WARMUP=1, SWITCHYARD=path, PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pair_setup

read -r UP_PORT QUIET_PORT SCRAPED_PORT QUIET_ADMIN SCRAPED_ADMIN <<<"$(free_ports 5 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"

UPSTREAMS="{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }"
ROUTE='{ "name": "all", "upstream": "app" }'
# Both have an admin listener, so the scraping is the only difference.
write_switchyard_conf "$TMP_DIR/quiet.json" "$QUIET_PORT" "$UPSTREAMS" "$ROUTE" \
  "\"admin\": { \"address\": \"127.0.0.1:$QUIET_ADMIN\" },"
write_switchyard_conf "$TMP_DIR/scraped.json" "$SCRAPED_PORT" "$UPSTREAMS" "$ROUTE" \
  "\"admin\": { \"address\": \"127.0.0.1:$SCRAPED_ADMIN\" },"
start_switchyard quiet "$TMP_DIR/quiet.json" "$QUIET_PORT" || die "switchyard (quiet): $SKIP_REASON"
PAIR_PID[quiet]=$LAST_PID PAIR_PORT[quiet]=$QUIET_PORT
start_switchyard scraped "$TMP_DIR/scraped.json" "$SCRAPED_PORT" || die "switchyard (scraped): $SKIP_REASON"
PAIR_PID[scraped]=$LAST_PID PAIR_PORT[scraped]=$SCRAPED_PORT
PAIR_MODES=(quiet scraped)
wait_port "$SCRAPED_ADMIN" || die "admin port $SCRAPED_ADMIN not open"

# The scraper: every second, the three pages; counts what it fetched.
(
  n=0
  while :; do
    for page in status status.json metrics; do
      curl -s -o /dev/null "http://127.0.0.1:$SCRAPED_ADMIN/$page" && n=$((n + 1))
    done
    echo "$n" >"$TMP_DIR/scrapes"
    sleep 1
  done
) &
PIDS+=("$!")

echo "Switchyard admin scraping cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, 1 worker each," \
  "wrk -t1 -c$CONNS, $ROUNDS alternating rounds of ${DURATION}s, medians"
echo "  binary: $SY_BIN"
load_note
pair_table_head
pair_rounds plain / -t1 -c"$CONNS" -d"${DURATION}s" --latency

echo
pair_summary plain quiet scraped
echo "  pages fetched by the scraper: $(cat "$TMP_DIR/scrapes" 2>/dev/null || echo 0)"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
