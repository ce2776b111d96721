#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: the one figure on this
# shared 2-core machine that does not move with background load, so a change can be compared
# with the binary before it even when wall-clock ratios are noise.
#
#   bash Benchmarks/instructions.sh                      # .build/release/switchyard
#   BASELINE=/path/to/old/switchyard bash Benchmarks/instructions.sh
#   SIGNED=1 bash Benchmarks/instructions.sh             # the upstream signs with SigV4
#   SPLIT=1 RETURNING=1 bash Benchmarks/instructions.sh  # a sticky split, a returning user
#   EXPERIMENT=1 RETURNING=1 bash Benchmarks/instructions.sh  # the same split with an experiment
#   KEEP=/tmp/profile bash Benchmarks/instructions.sh     # keep callgrind's outputs there
#                                                        # (read them with callgrind_annotate)
#
# Each binary (debug info stripped: valgrind 3.19 cannot read Swift's DWARF 5) runs under
# `valgrind --tool=callgrind` with one worker in front of an nginx origin answering "ok\n";
# one Python keep-alive client sends N1 and then, in a second run, N2 GETs. The difference of
# the two totals over N2 - N1 is the cost of a request, start-up and shutdown cancelled out.
# Needs valgrind, nginx and python3 (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-2000}
N2=${N2:-12000}
SWITCHYARD=${SWITCHYARD:-.build/release/switchyard}
BASELINE=${BASELINE:-}
# SIGNED=1: every request is signed for the upstream (auth.aws, made-up credentials; nginx does
# not check them): a signed small GET's cost, to set against an unsigned run's.
auth=""
[[ -n ${SIGNED:-} ]] && auth=', "auth": { "aws": { "service": "lambda", "region": "eu-west-1" } }'
# SPLIT=1: the route is a 50/50 split with an assignment cookie (sy-ab) over two upstreams of the
# origin; EXPERIMENT=1: the same with an experiment (exposure log in the temp dir, two POST goals
# the GETs never reach). RETURNING=1: the client takes the cookie of its first answer and sends it
# on every request (a returning user); without it every request is a new user.
route='{ "name": "all", "upstream": "app" }'
app2=""
if [[ -n ${SPLIT:-}${EXPERIMENT:-} ]]; then
  route='{ "name": "all", "sticky": { "cookie": "sy-ab" },
    "split": [ {"variant": "A", "upstream": "app", "weight": 50}, {"variant": "B", "upstream": "app2", "weight": 50} ]'
  [[ -n ${EXPERIMENT:-} ]] && route+=', "experiment": { "name": "bench", "exposureLog": "EXPOSURES", "goals": [
      { "name": "checkout", "match": { "method": "POST", "pathPrefix": "/checkout" } },
      { "name": "signup", "match": { "method": "POST", "pathPrefix": "/signup" } } ] }'
  route+=' }'
  app2=', "app2": { "endpoints": ["127.0.0.1:UP"] }'
fi

for tool in valgrind nginx python3 objcopy; do
  command -v "$tool" >/dev/null || { apt-get install -y valgrind nginx-light binutils python3 >/dev/null; break; }
done
[[ -x $SWITCHYARD ]] || swift build -c release --product switchyard >/dev/null

work=$(mktemp -d /tmp/switchyard-instructions.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

cat > "$work/client.py" <<'PY'
import socket, sys
port, n, returning = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] != ""
s = socket.create_connection(("127.0.0.1", port))
request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(request)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in buf[:end].decode().split("\r\n")[1:]:
                name, value = line.split(":", 1)
                if name.lower() == "content-length":
                    length = int(value)
                if returning and name.lower() == "set-cookie":
                    cookie = value.strip().split(";")[0]
                    request = f"GET / HTTP/1.1\r\nHost: a\r\nCookie: {cookie}\r\n\r\n".encode()
            if len(buf) >= end + 4 + length:
                buf = buf[end + 4 + length:]
                break
        data = s.recv(65536)
        if not data:
            sys.exit("the proxy closed the connection")
        buf += data
PY

up=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$up; location / { return 200 "ok\n"; } } }
NGINX
nginx -c "$work/nginx.conf" & pids+=($!)

# total BINARY N: callgrind's instruction total for N proxied requests.
total() {
  local bin=$1 n=$2 port out
  port=$(free_port)
  out="$work/callgrind.$n.out"
  cat > "$work/proxy.json" <<JSON
{ "workers": 1, "listeners": [ { "address": "127.0.0.1:$port" } ],
  "upstreams": { "app": { "endpoints": ["127.0.0.1:$up"]$auth }${app2/UP/$up} },
  "routes": [ ${route/EXPOSURES/$work/exposures.$n.jsonl} ] }
JSON
  AWS_ACCESS_KEY_ID=AKIDBENCHMARK AWS_SECRET_ACCESS_KEY=benchmark \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run --config "$work/proxy.json" 2>"$work/valgrind.err" &
  local vg=$!
  for _ in $(seq 1 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
  done
  python3 "$work/client.py" "$port" "$n" "${RETURNING:-}"
  kill -TERM "$vg"; wait "$vg" 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && { mkdir -p "$KEEP"; cp "$out" "$KEEP/callgrind.$(basename "$bin" .bin).$n.out"; }
  sed -n 's/^summary: //p' "$out"
}

per_request() {
  local stripped="$work/$1.bin" a b
  objcopy --strip-debug "$2" "$stripped"
  a=$(total "$stripped" "$N1")
  b=$(total "$stripped" "$N2")
  echo $(( (b - a) / (N2 - N1) ))
}

new=$(per_request switchyard "$SWITCHYARD")
echo "Switchyard ($SWITCHYARD${SIGNED:+, signed}${SPLIT:+, split}${EXPERIMENT:+, experiment}${RETURNING:+, returning user}): $new instructions per request (callgrind, $N1 and $N2 keep-alive GETs)"
if [[ -n $BASELINE ]]; then
  old=$(per_request baseline "$BASELINE")
  echo "baseline ($BASELINE): $old instructions per request"
  python3 -c "print(f'Switchyard / baseline: {$new / $old:.3f}x (lower is better)')"
fi
