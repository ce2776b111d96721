#!/usr/bin/env bash
# What the admin status page costs to look at: /status and /status.json of a proxy with ROUTES
# routes (each a two-variant split over two `switchyard echo` upstreams, traffic on each; the
# first, `shop`, with a rollout in progress and a compared shadow), fetched COUNT times each with
# curl. Prints the median and the slowest 1% of the times. Bar: /status in <= 5 ms at 50 routes.
#
#   bash Benchmarks/status_page.sh
#   ROUTES=200 COUNT=500 bash Benchmarks/status_page.sh
#   SCREENSHOT=docs/status.png bash Benchmarks/status_page.sh   # and a chromium screenshot
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
command -v curl >/dev/null 2>&1 || die "curl not found"

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
      extra=', "rollout": { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 600, "gates": { "maxErrorRate": 0.01, "minRequests": 20 } },
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
curl -s -o /dev/null "${urls[@]}"
# The shadow answers with its own name: every compared answer differs from the primary's body,
# and the status page lists the latest of them.
curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/shop/x%3Cscript%3E"

measure() { # PATH: COUNT fetches on one connection each, times in ms
  local path=$1 i
  for ((i = 0; i < COUNT; i++)); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$ADMIN_PORT$path"
  done | awk '{printf "%.3f\n", $1 * 1000}' | sort -g >"$TMP_DIR/times"
  local p99_index=$(( (COUNT * 99 + 99) / 100 ))
  printf '  %-13s median %s ms, p99 %s ms, max %s ms (%d fetches, %s bytes)\n' "$path" \
    "$(median "$(tr '\n' ' ' <"$TMP_DIR/times")")" "$(sed -n "${p99_index}p" "$TMP_DIR/times")" \
    "$(tail -n 1 "$TMP_DIR/times")" "$COUNT" "$(curl -s "http://127.0.0.1:$ADMIN_PORT$path" | wc -c)"
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
