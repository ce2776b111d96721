#!/usr/bin/env bash
# A real Prometheus scraping Switchyard's admin listener: checks /metrics with
# `promtool check metrics`, sends a 70/30 split of traffic for a while, then asks Prometheus
# `sum by (variant) (rate(switchyard_requests_total[30s]))` and prints each variant's rate.
# Needs `prometheus` and `promtool` (Debian: apt-get install prometheus) and curl.
#
#   bash Benchmarks/prometheus.sh
#
# Environment (all optional): SECONDS_OF_TRAFFIC=20, SWITCHYARD=path (default
# .build/release/switchyard, built if missing), KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAFFIC=${SECONDS_OF_TRAFFIC:-20}
for t in prometheus promtool curl; do command -v "$t" >/dev/null || die "$t is not installed (apt-get install prometheus curl)"; done

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r UP_PORT SY_PORT ADMIN_PORT PROM_PORT <<<"$(free_ports 4 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"
cat >"$TMP_DIR/sy.json" <<EOF
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$SY_PORT" } ],
  "upstreams": { "stable": { "endpoints": ["127.0.0.1:$UP_PORT"] }, "canary": { "endpoints": ["127.0.0.1:$UP_PORT"] } },
  "routes": [ { "name": "shop", "split": [ { "variant": "stable", "upstream": "stable", "weight": 70 },
                                           { "variant": "canary", "upstream": "canary", "weight": 30 } ] } ],
  "admin": { "address": "127.0.0.1:$ADMIN_PORT" }
}
EOF
start_switchyard switchyard "$TMP_DIR/sy.json" "$SY_PORT" || die "switchyard: $SKIP_REASON"
wait_port "$ADMIN_PORT" || die "the admin listener did not open"

cat >"$TMP_DIR/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: switchyard
    static_configs: [ { targets: ["127.0.0.1:$ADMIN_PORT"] } ]
EOF
spawn prometheus prometheus --config.file="$TMP_DIR/prometheus.yml" --storage.tsdb.path="$TMP_DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT"
wait_port "$PROM_PORT" "$LAST_PID" 300 || die "prometheus did not start: $(log_tail prometheus 5)"

echo "Switchyard under a real Prometheus: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(prometheus --version 2>&1 | head -1)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$TMP_DIR/metrics.txt"
if promtool check metrics <"$TMP_DIR/metrics.txt" >"$TMP_DIR/promtool.txt" 2>&1; then
  echo "  promtool check metrics: ok"
else
  echo "  promtool check metrics: FAILED"; sed 's/^/    /' "$TMP_DIR/promtool.txt"
fi

# New users each time (no cookie): the split decides, 70/30.
run_wrk "$TMP_DIR/wrk.txt" -t1 -c4 -d"${TRAFFIC}s" "http://127.0.0.1:$SY_PORT/"
sleep 2   # one more scrape after the traffic

query='sum by (variant) (rate(switchyard_requests_total[30s]))'
answer=$(curl -s --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$query")
echo "  query: $query"
"$PY" - "$answer" <<'EOF'
import json, sys
a = json.loads(sys.argv[1])
if a.get("status") != "success":
    print("  FAILED:", a); sys.exit(1)
rows = a["data"]["result"]
total = sum(float(r["value"][1]) for r in rows) or 1
for r in sorted(rows, key=lambda r: r["metric"].get("variant", "")):
    v = float(r["value"][1])
    print(f'  variant={r["metric"].get("variant", "?"):8} {v:10.1f} req/s  ({100 * v / total:.1f}%)')
variants = {r["metric"].get("variant") for r in rows}
print("  every variant answered:", "yes" if {"stable", "canary"} <= variants else f"NO ({variants})")
EOF
