#!/usr/bin/env bash
# What an A/B experiment costs on the request path: the same Switchyard binary, one worker each,
# twice in front of one nginx origin, in one run, alternating, medians:
#   split       a 50/50 sticky split (variants A and B: two servers of the origin), no experiment
#   experiment  the same route with an `experiment`: an exposure log in the temp dir and two goals
#               (POST /checkout, POST /signup; the measured GETs of "/" reach neither, but every
#               request is checked against both)
# Every measurement is `wrk -t1 -cCONNS --latency /`.
#   (returning) returning users: every request carries an assignment cookie that one curl through
#               that proxy got first (version 1 from split, version 2 with its unit from
#               experiment), so each request exposes a known unit (a lock and a HyperLogLog add)
#               and writes no exposure line. Bar: experiment >= 0.95x split req/s.
#   (new)       new users, no cookie (wrk's default): every request a fresh unit, a Set-Cookie and,
#               with the experiment, an exposure line. No bar: the lines per second and whether
#               any were dropped (`show experiment` over the control socket) are information.
# Also each proxy's CPU time (user + system) per request: steadier than req/s when other
# processes load the machine.
#
#   bash Benchmarks/experiments.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/experiments.sh
#
# Environment (all optional): DURATION=10 (seconds per wrk run), ROUNDS=3, CONNS=50, WARMUP=1,
# SWITCHYARD=path (default .build/release/switchyard, built if missing), PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pair_setup

read -r UP_PORT UP2_PORT SPLIT_PORT EXP_PORT <<<"$(free_ports 4 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT" "$(ok_server "$UP2_PORT")"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"
wait_port "$UP2_PORT" || die "origin port $UP2_PORT not open"

EXPOSURES="$TMP_DIR/exposures.jsonl"
UPSTREAMS="{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] }, \"app2\": { \"endpoints\": [\"127.0.0.1:$UP2_PORT\"] } }"
SPLIT='"name": "all",
    "split": [ {"variant": "A", "upstream": "app", "weight": 50}, {"variant": "B", "upstream": "app2", "weight": 50} ],
    "sticky": { "cookie": "sy-ab" }'
GOALS='[ { "name": "checkout", "match": { "method": "POST", "pathPrefix": "/checkout" }, "status": "2xx" },
               { "name": "signup", "match": { "method": "POST", "pathPrefix": "/signup" }, "status": "2xx" } ]'
# Both have a control socket, so the experiment is the only difference.
write_switchyard_conf "$TMP_DIR/split.json" "$SPLIT_PORT" "$UPSTREAMS" "{ $SPLIT }" \
  "\"control\": { \"socket\": \"$TMP_DIR/split.sock\" },"
write_switchyard_conf "$TMP_DIR/experiment.json" "$EXP_PORT" "$UPSTREAMS" "{ $SPLIT,
    \"experiment\": { \"name\": \"bench\", \"exposureLog\": \"$EXPOSURES\", \"goals\": $GOALS } }" \
  "\"control\": { \"socket\": \"$TMP_DIR/experiment.sock\" },"

start_switchyard split "$TMP_DIR/split.json" "$SPLIT_PORT" || die "switchyard (split): $SKIP_REASON"
PAIR_PID[split]=$LAST_PID PAIR_PORT[split]=$SPLIT_PORT
start_switchyard experiment "$TMP_DIR/experiment.json" "$EXP_PORT" || die "switchyard (experiment): $SKIP_REASON"
PAIR_PID[experiment]=$LAST_PID PAIR_PORT[experiment]=$EXP_PORT
PAIR_MODES=(split experiment)

# assignment_cookie MODE VERSION: the sy-ab cookie a first request through MODE's proxy gets, after
# checking it is of VERSION and that replaying it is accepted (no new Set-Cookie).
assignment_cookie() {
  local mode=$1 version=$2 url="http://127.0.0.1:${PAIR_PORT[$1]}/" value again
  value=$(curl -s -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: sy-ab=\([^;]*\).*/\1/p' | head -n1)
  [[ $value == "$version".* ]] || die "$mode: expected a version-$version sy-ab cookie from $url, got '${value}'"
  again=$(curl -s -D - -o /dev/null -H "Cookie: sy-ab=$value" "$url" | tr -d '\r' | grep -ci '^set-cookie: sy-ab=' || true)
  ((again == 0)) || die "$mode: replaying sy-ab=$value got a new assignment cookie"
  echo "$value"
}

# exposures: "WRITTEN DROPPED" of the experiment's exposure log, from `show experiment all`.
exposures() {
  "$SY_BIN" ctl --socket "$TMP_DIR/experiment.sock" --json show experiment all |
    "$PY" -c 'import json, sys
d = json.loads(sys.stdin.readline()).get("exposureLog", {})
print(d.get("written", "?"), d.get("dropped", "?"))'
}

echo "Switchyard experiment cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, 1 worker each," \
  "wrk -t1 -c$CONNS, $ROUNDS alternating rounds of ${DURATION}s, medians"
echo "  binary: $SY_BIN"
load_note

PAIR_HEADER[returning-split]="Cookie: sy-ab=$(assignment_cookie split 1)"
PAIR_HEADER[returning-experiment]="Cookie: sy-ab=$(assignment_cookie experiment 2)"
echo "  returning users' cookies: split ${PAIR_HEADER[returning-split]#Cookie: }, experiment ${PAIR_HEADER[returning-experiment]#Cookie: }"

pair_table_head
read -r written0 _ <<<"$(exposures)"
pair_rounds returning / -t1 -c"$CONNS" -d"${DURATION}s" --latency
read -r written1 _ <<<"$(exposures)"
# New users: the warm-up's own exposure lines are left out of the count.
for mode in "${PAIR_MODES[@]}"; do warmup "http://127.0.0.1:${PAIR_PORT[$mode]}/" "$CONNS"; done
read -r written2 _ <<<"$(exposures)"
WARMUP=0 pair_rounds new / -t1 -c"$CONNS" -d"${DURATION}s" --latency
read -r written3 dropped <<<"$(exposures)"

# summary SCENARIO WORDS: experiment against split (PAIR_RATIO holds the req/s ratio).
summary() { pair_summary "$1" split experiment "$2"; }

echo
summary returning "returning users"
RATIO=$PAIR_RATIO
verdict=$(awk -v r="$RATIO" 'BEGIN {print (r >= 0.95 ? "PASS" : "FAIL")}')
echo "  bar: experiment/split >= 0.95 with returning users: $verdict ($RATIO)"
echo "  returning users: $((written1 - written0)) exposure lines written during the runs (0 expected: every unit was known)"
summary new "new users (no bar)"
requests=$(tr ' ' '\n' <<<"${PAIR_REQ[new-experiment]}" | awk '{n += $1} END {print n + 0}')
lines=$((written3 - written2))
echo "  new users: $lines exposure lines in $((ROUNDS * DURATION)) s of experiment runs" \
  "= $(awk -v n="$lines" -v t="$((ROUNDS * DURATION))" 'BEGIN {printf "%.0f", n / t}') lines/s for $requests requests;" \
  "$dropped dropped in the whole run; the file has $(wc -l <"$EXPOSURES") lines"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
