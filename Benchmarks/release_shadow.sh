#!/usr/bin/env bash
# What a running release costs requests: the same Switchyard binary, one worker each, twice in
# front of one nginx origin (two servers: the version serving users and the new one), in one
# run, alternating, medians:
#   mirror   a 100% mirror of GETs to the new version, compared (status, latency)
#   release  a rollout of the new version in its shadow stage (the same compared 100% mirror, made
#            by the rollout, which reads the comparisons five times a second and waits for
#            minCompared, set too high to be reached)
# Every measurement is `wrk -t1 -cCONNS --latency /` (compare.sh's scenario a, plus the copies).
# Bar: release within noise of mirror. Also each proxy's CPU time per request.
#
#   bash Benchmarks/release_shadow.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/release_shadow.sh
#
# Environment (all optional): DURATION=10, ROUNDS=3, CONNS=50, WARMUP=1, SWITCHYARD=path, PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pair_setup

read -r UP_PORT NEW_PORT MIRROR_PORT RELEASE_PORT <<<"$(free_ports 4 | tr '\n' ' ')"
write_upstream_conf upstream "$UP_PORT" "$(ok_server "$NEW_PORT")"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"
wait_port "$NEW_PORT" || die "origin port $NEW_PORT not open"

UPSTREAMS="{ \"stable\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] }, \"canary\": { \"endpoints\": [\"127.0.0.1:$NEW_PORT\"] } }"
SPLIT='"name": "all",
    "split": [ {"variant": "stable", "upstream": "stable", "weight": 100}, {"variant": "canary", "upstream": "canary", "weight": 0} ]'
write_switchyard_conf "$TMP_DIR/mirror.json" "$MIRROR_PORT" "$UPSTREAMS" "{ $SPLIT,
    \"mirror\": [ { \"upstream\": \"canary\", \"percent\": 100, \"compare\": {} } ] }" \
  "\"control\": { \"socket\": \"$TMP_DIR/mirror.sock\" },"
write_switchyard_conf "$TMP_DIR/release.json" "$RELEASE_PORT" "$UPSTREAMS" "{ $SPLIT,
    \"rollout\": { \"variant\": \"canary\", \"steps\": [10, 100], \"shadow\": { \"minCompared\": 1000000000, \"maxSeconds\": 604800 } } }" \
  "\"control\": { \"socket\": \"$TMP_DIR/release.sock\" },"
start_switchyard mirror "$TMP_DIR/mirror.json" "$MIRROR_PORT" || die "switchyard (mirror): $SKIP_REASON"
PAIR_PID[mirror]=$LAST_PID PAIR_PORT[mirror]=$MIRROR_PORT
start_switchyard release "$TMP_DIR/release.json" "$RELEASE_PORT" || die "switchyard (release): $SKIP_REASON"
PAIR_PID[release]=$LAST_PID PAIR_PORT[release]=$RELEASE_PORT
PAIR_MODES=(mirror release)

state=$("$SY_BIN" ctl --socket "$TMP_DIR/release.sock" --json show rollout all | "$PY" -c 'import json, sys
print(json.loads(sys.stdin.readline()).get("state", "?"))')
[[ $state == shadowing ]] || die "the release is not in its shadow stage (state $state)"

echo "Switchyard release cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, 1 worker each," \
  "wrk -t1 -c$CONNS, $ROUNDS alternating rounds of ${DURATION}s, medians"
echo "  binary: $SY_BIN"
load_note
pair_table_head
pair_rounds get / -t1 -c"$CONNS" -d"${DURATION}s" --latency

compared=$("$SY_BIN" ctl --socket "$TMP_DIR/release.sock" --json show shadow | "$PY" -c 'import json, sys
print(sum(r.get("compared", 0) for r in json.loads(sys.stdin.readline()).get("shadows", [])))')
echo
pair_summary get mirror release
echo "  the release's shadow stage compared $compared copies"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
