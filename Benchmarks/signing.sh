#!/usr/bin/env bash
# What SigV4 signing (upstreams.NAME.auth.aws) costs: the same Switchyard binary, one worker
# each, twice in front of one nginx origin, once unsigned ("plain") and once signing every
# request with made-up credentials ("signed": nginx does not check them), in one run,
# alternating, medians.
#   (get)  small keep-alive GETs: req/s of each and signed/plain. Bar: signed >= 0.90x plain.
#          Also each proxy's CPU time (user + system) per request: steadier than req/s when
#          other processes load the machine.
#   (post) 1 MiB POSTs at low concurrency: p50 and p99 latency of each and what signing adds
#          (a signed body is read whole and hashed before the request goes; a plain one streams).
#
#   bash Benchmarks/signing.sh
#   DURATION=5 ROUNDS=5 bash Benchmarks/signing.sh
#
# Environment (all optional): DURATION=10 (seconds per wrk run), ROUNDS=3, CONNS=50 (GETs),
# POST_CONNS=4, POST_BYTES=1048576, SWITCHYARD=path (default .build/release/switchyard, built if
# missing), PIN=1, KEEP=1.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
POST_CONNS=${POST_CONNS:-4}
POST_BYTES=${POST_BYTES:-1048576}
for v in DURATION ROUNDS CONNS POST_CONNS POST_BYTES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

bench_init
resolve_switchyard
[[ -n $SY_BIN ]] || die "no Switchyard binary: $SY_SKIP"

read -r UP_PORT PLAIN_PORT SIGNED_PORT <<<"$(free_ports 3 | tr '\n' ' ')"
# "/" answers "ok\n" to a GET and to a POST alike (nginx reads and drops the body).
write_upstream_conf upstream "$UP_PORT" "    client_max_body_size $((POST_BYTES + 1048576));"
start_nginx upstream "$UP_PORT" || die "origin nginx did not start: $(log_tail upstream 5)"

write_switchyard_conf "$TMP_DIR/plain.json" "$PLAIN_PORT" \
  "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"] } }" '{ "name": "all", "upstream": "app" }'
write_switchyard_conf "$TMP_DIR/signed.json" "$SIGNED_PORT" \
  "{ \"app\": { \"endpoints\": [\"127.0.0.1:$UP_PORT\"],
       \"auth\": { \"aws\": { \"service\": \"lambda\", \"region\": \"eu-west-1\", \"maxBodyBytes\": $((POST_BYTES * 2)) } } } }" \
  '{ "name": "all", "upstream": "app" }'
export AWS_ACCESS_KEY_ID=AKIDSWITCHYARDBENCH AWS_SECRET_ACCESS_KEY=switchyard-benchmark-secret
unset AWS_SESSION_TOKEN AWS_PROFILE
start_switchyard plain "$TMP_DIR/plain.json" "$PLAIN_PORT" || die "switchyard (plain): $SKIP_REASON"
PAIR_PID[plain]=$LAST_PID PAIR_PORT[plain]=$PLAIN_PORT
start_switchyard signed "$TMP_DIR/signed.json" "$SIGNED_PORT" || die "switchyard (signed): $SKIP_REASON"
PAIR_PID[signed]=$LAST_PID PAIR_PORT[signed]=$SIGNED_PORT
PAIR_MODES=(plain signed)

echo "Switchyard signing cost: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, 1 worker each," \
  "$ROUNDS alternating rounds of ${DURATION}s, medians"
echo "  binary: $SY_BIN"
load_note

pair_table_head
pair_rounds get / -t1 -c"$CONNS" -d"${DURATION}s" --latency
export POST_BYTES # read by post_body.lua
WARMUP=0 pair_rounds post / -t1 -c"$POST_CONNS" -d"${DURATION}s" --latency -s "$BENCH_DIR/post_body.lua"

plain=$(median "${PAIR_RPS[get-plain]}")
signed=$(median "${PAIR_RPS[get-signed]}")
echo
echo "  small GETs, median req/s: plain $plain, signed $signed; signed/plain =" \
  "$(awk -v a="$signed" -v b="$plain" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') (bar >= 0.90)"
plain=$(median "${PAIR_CPU[get-plain]}")
signed=$(median "${PAIR_CPU[get-signed]}")
echo "  small GETs, median proxy CPU per request: plain $plain us, signed $signed us; plain/signed =" \
  "$(awk -v a="$signed" -v b="$plain" 'BEGIN {printf "%.3f", (a > 0 ? b / a : 0)}')"
for q in 50 99; do
  declare -n lat="PAIR_P$q"
  a=$(median "${lat[post-plain]}")
  b=$(median "${lat[post-signed]}")
  echo "  $POST_BYTES-byte POSTs (-c$POST_CONNS), median p$q: plain $a ms, signed $b ms; signing adds" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}') ms"
  unset -n lat
done
