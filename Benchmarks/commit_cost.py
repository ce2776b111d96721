#!/usr/bin/env python3
"""What a runtime weight change costs: the snapshot rebuild bar.

Generates a config of ROUTES routes (default 100), SIGNED of them (default 20) with a signed
sticky cookie (half `secretFile`, half `secretEnv`), each route a two-variant split over its own
two upstreams, starts `switchyard run` on it with a control socket, and sends COUNT
`set weights ROUTE stable=W canary=100-W` commands over one control connection, cycling over
the routes (signed and unsigned alike). Each reply carries `commitMs`: the time the proxy spent
in the commit itself (override applied, snapshot built and published, state file saved when
there is one), measured inside the proxy, so socket round trips do not count. The round trip
is reported beside it.

Bar: median and p99 of commitMs under 5 ms. Exit 1 when it fails.

usage: Benchmarks/commit_cost.py [--binary PATH] [--routes 100] [--signed 20] [--count 400]
                                 [--state-file] [--workers 2]
The default binary is $SWITCHYARD, else .build/release/switchyard (swift build -c release).
--state-file adds a state file, so each commit also writes and fsyncs it (disk-bound).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def write_config(tmp, routes, signed, workers, state_file):
    secret_path = os.path.join(tmp, "sticky.secret")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"a-sticky-cookie-secret-of-some-length-0123456789\n")
    os.close(fd)
    upstreams = {}
    config_routes = []
    for i in range(routes):
        # Nothing listens there: commits never dial an endpoint.
        upstreams[f"r{i}-stable"] = {"endpoints": [f"127.0.0.1:{20000 + 2 * i}"]}
        upstreams[f"r{i}-canary"] = {"endpoints": [f"127.0.0.1:{20001 + 2 * i}"]}
        route = {
            "name": f"r{i}",
            "match": {"pathPrefix": f"/r{i}/"},
            "split": [
                {"variant": "stable", "upstream": f"r{i}-stable", "weight": 90},
                {"variant": "canary", "upstream": f"r{i}-canary", "weight": 10},
            ],
        }
        if i < signed:
            sticky = {"key": {"header": "X-User-Id"}}
            if i % 2 == 0:
                sticky["secretFile"] = secret_path
            else:
                sticky["secretEnv"] = "COMMIT_COST_SECRET"
            route["sticky"] = sticky
        else:
            route["sticky"] = {}
        config_routes.append(route)
    control = {"socket": os.path.join(tmp, "control.sock")}
    if state_file:
        control["stateFile"] = os.path.join(tmp, "state.json")
    config = {
        "listeners": [{"address": "127.0.0.1:0"}],
        "workers": workers,
        "upstreams": upstreams,
        "routes": config_routes,
        "control": control,
    }
    path = os.path.join(tmp, "commit-cost.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    return path, control["socket"]


class Control:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def command(self, line):
        self.s.sendall((line + "\n").encode())
        return json.loads(self.f.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.environ.get("SWITCHYARD", os.path.join(REPO, ".build/release/switchyard")))
    ap.add_argument("--routes", type=int, default=100)
    ap.add_argument("--signed", type=int, default=20)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--state-file", action="store_true")
    ap.add_argument("--bar-ms", type=float, default=5.0)
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary}: not built (swift build -c release, or --binary / SWITCHYARD=PATH)")

    tmp = tempfile.mkdtemp(prefix="sy-commit-")
    proxy = None
    try:
        config, sock = write_config(tmp, args.routes, args.signed, args.workers, args.state_file)
        env = dict(os.environ, COMMIT_COST_SECRET="another-sticky-cookie-secret-0123456789")
        t0 = time.perf_counter()
        proxy = subprocess.Popen([args.binary, "run", "--config", config], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proxy.stderr.readline()
            if not line:
                raise SystemExit(f"the proxy exited ({proxy.poll()}):\n{''.join(lines)}")
            lines.append(line)
            if "listening on" in line:
                break
        else:
            raise SystemExit("the proxy did not start:\n" + "".join(lines))
        started = time.perf_counter() - t0
        threading.Thread(target=lambda: [None for _ in proxy.stderr], daemon=True).start()
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if time.time() > deadline:
                raise SystemExit("no control socket")
            time.sleep(0.01)
        control = Control(sock)

        commit_ms, rtt_ms, signed_ms = [], [], []
        for n in range(args.count):
            route = n % args.routes
            w = 10 + (n // args.routes) % 80
            t = time.perf_counter()
            reply = control.command(f"set weights r{route} stable={100 - w} canary={w}")
            rtt = (time.perf_counter() - t) * 1000
            if not reply.get("ok"):
                raise SystemExit(f"set weights r{route}: {reply}")
            if "commitMs" not in reply:
                raise SystemExit("the reply carries no commitMs (a binary older than the measurement)")
            commit_ms.append(reply["commitMs"])
            rtt_ms.append(rtt)
            if route < args.signed:
                signed_ms.append(reply["commitMs"])

        print(f"binary: {args.binary}")
        print(f"config: {args.routes} routes, {args.signed} signed sticky, workers {args.workers}, "
              f"state file {'on' if args.state_file else 'off'}; startup to listening {started * 1000:.0f} ms")
        print(f"set weights x{args.count}:")
        print(f"  commitMs (in the proxy)   median {pct(commit_ms, 50):8.3f}  p99 {pct(commit_ms, 99):8.3f}  "
              f"max {max(commit_ms):8.3f}")
        print(f"    on signed routes        median {pct(signed_ms, 50):8.3f}  p99 {pct(signed_ms, 99):8.3f}")
        print(f"  round trip (ms)           median {pct(rtt_ms, 50):8.3f}  p99 {pct(rtt_ms, 99):8.3f}")
        ok = pct(commit_ms, 99) < args.bar_ms
        print(f"bar: p99 commitMs < {args.bar_ms} ms: {'PASS' if ok else 'FAIL'}")
        sys.exit(0 if ok else 1)
    finally:
        if proxy and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
