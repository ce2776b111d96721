#!/usr/bin/env bash
# What the admin status page costs to look at: /status and /status.json of a proxy with ROUTES
# routes (each a two-variant split over two `switchyard echo` upstreams, traffic on each; the
# first, `shop`, with a rollout in progress and a compared shadow), fetched COUNT times each with
# one keep-alive connection (status_times.py). Prints the median, p99 and slowest times. Bar: /status in <= 5 ms at 50 routes.
#
#   bash Benchmarks/status_page.sh
#   ROUTES=200 COUNT=500 bash Benchmarks/status_page.sh
#   SCREENSHOT=deploy/status-page.png bash Benchmarks/status_page.sh   # and a chromium screenshot
#
# Environment (all optional): ROUTES=50, COUNT=200, SCREENSHOT=path (needs chromium),
# SWITCHYARD=path (default .build/release/switchyard, built if missing), KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUTES=${ROUTES:-50}
COUNT=${COUNT:-200}
for v in ROUTES COUNT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for t in curl "$PY"; do command -v "$t" >/dev/null 2>&1 || die "$t not found"; done

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r STABLE_PORT CANARY_PORT SHADOW_PORT PROXY_PORT ADMIN_PORT <<<"$(free_ports 5 | tr '\n' ' ')"
spawn stable "$SY_BIN" echo --listen "127.0.0.1:$STABLE_PORT" --name stable
spawn canary "$SY_BIN" echo --listen "127.0.0.1:$CANARY_PORT" --name canary
spawn shadow "$SY_BIN" echo --listen "127.0.0.1:$SHADOW_PORT" --name shadow
for p in "$STABLE_PORT" "$CANARY_PORT" "$SHADOW_PORT"; do wait_port "$p" || die "echo upstream on $p did not start"; done

{
  echo '{ "listeners": [ { "address": "127.0.0.1:'"$PROXY_PORT"'" } ], "workers": 2,'
  echo '  "upstreams": { "stable": { "endpoints": ["127.0.0.1:'"$STABLE_PORT"'"] },'
  echo '                 "canary": { "endpoints": ["127.0.0.1:'"$CANARY_PORT"'"] },'
  echo '                 "shadow": { "endpoints": ["127.0.0.1:'"$SHADOW_PORT"'"] } },'
  echo '  "routes": ['
  for ((i = 0; i < ROUTES; i++)); do
    name="r$i" extra=""
    if ((i == 0)); then
      name="shop"
      extra=', "rollout": { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 2, "maxStepSeconds": 600, "gates": { "maxErrorRate": 0.01, "minRequests": 20 } },
      "mirror": [ { "upstream": "shadow", "percent": 100, "compare": { "status": true, "bodyHash": true } } ]'
    fi
    echo "    { \"name\": \"$name\", \"match\": { \"pathPrefix\": \"/$name/\" },"
    echo "      \"split\": [ { \"variant\": \"stable\", \"upstream\": \"stable\", \"weight\": 90 },"
    echo "                 { \"variant\": \"canary\", \"upstream\": \"canary\", \"weight\": 10 } ]$extra }$( ((i + 1 < ROUTES)) && echo ,)"
  done
  echo '  ],'
  echo '  "admin": { "address": "127.0.0.1:'"$ADMIN_PORT"'" },'
  echo '  "control": { "socket": "'"$TMP_DIR"'/control.sock" } }'
} >"$TMP_DIR/proxy.json"
spawn proxy "$SY_BIN" run --config "$TMP_DIR/proxy.json"
wait_port "$PROXY_PORT" "$LAST_PID" && wait_port "$ADMIN_PORT" "$LAST_PID" || die "proxy did not start: $(log_tail proxy)"

log "traffic on every route"
urls=()
for ((i = 0; i < ROUTES; i++)); do
  name=$([[ $i == 0 ]] && echo shop || echo "r$i")
  for n in 1 2 3 4 5 6 7 8 9 10; do urls+=("http://127.0.0.1:$PROXY_PORT/$name/$n"); done
done
curl -s "${urls[@]}" >/dev/null
# `shop` until its rollout's first step is judged: it waits at its second step (gate readings
# shown) for 20 canary requests that do not come. The shadow answers with its own name, so
# every compared answer differs from the primary's body and the page lists the latest.
shop=()
for n in $(seq 1 50); do shop+=("http://127.0.0.1:$PROXY_PORT/shop/$n"); done
for ((try = 0; try < 100; try++)); do
  curl -s "http://127.0.0.1:$ADMIN_PORT/status.json" | grep -q '"step":2' && break
  curl -s "${shop[@]}" >/dev/null
  sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/shop/x%3Cscript%3E"

measure() { # PATH
  printf '  %-13s %s\n' "$1" "$("$PY" "$BENCH_DIR/status_times.py" "$ADMIN_PORT" "$1" "$COUNT")"
}

echo "status page with $ROUTES routes ($(basename "$SY_BIN") $("$SY_BIN" --version 2>/dev/null || true)):"
measure /status
measure /status.json
measure /metrics

if [[ -n ${SCREENSHOT:-} ]]; then
  command -v chromium >/dev/null 2>&1 || die "chromium not found (apt-get install chromium)"
  chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TMP_DIR/chromium" --hide-scrollbars \
    --window-size=1280,1600 --screenshot="$(realpath -m "$SCREENSHOT")" "http://127.0.0.1:$ADMIN_PORT/status" \
    >"$TMP_DIR/chromium.log" 2>&1 || die "chromium failed: $(tail -n 3 "$TMP_DIR/chromium.log")"
  echo "screenshot: $SCREENSHOT"
fi
