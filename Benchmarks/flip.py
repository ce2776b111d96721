#!/usr/bin/env python3
"""Blue/green flips: the control socket's bars.

Starts three origins (blue, green, canary) and `switchyard run` in front of them with a control
socket and a state file, then flips `checkout` RATE times a second for DURATION seconds, twice:

  1. under load: wrk (-t1 -cCONNECTIONS, closed loop, so the 2 cores are saturated) runs the
     whole time; bars: zero failed requests (socket errors, non-2xx), every response from blue
     or green, and the first request sent after each flip's reply served by the new color;
  2. the flip's effect: no other load; after each flip's reply one request on a warm keep-alive
     connection must come from the new color; the time from the reply to its response is the
     effect, bar: p99 under 1 ms.

Each phase also times the same request half way between flips (what a request costs with no
flip) and the flip command's round trip (including the state file's fsync). Exit 1 when a bar
fails.

usage: Benchmarks/flip.py [--binary PATH] [--duration 8] [--rate 20] [--connections 16] [--workers 2]
                          [--upstream nginx|echo]
Build first: swift build -c release (the default binary is .build/release/switchyard). The
origins are nginx (one worker, three servers answering with X-Echo-Name) when it is installed,
else `switchyard echo` (a thread per connection: it, not the proxy, then limits the load).
"""
import argparse
import gc
import json
import math
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

WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; blue = 0; green = 0 end
function response(status, headers, body)
  local name = headers["X-Echo-Name"]
  if name == "blue" then blue = blue + 1
  elseif name == "green" then green = green + 1
  else bad = bad + 1 end
end
function done(summary, latency, requests)
  local b, g, x = 0, 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("blue"); g = g + t:get("green"); x = x + t:get("bad")
  end
  io.write(string.format("COLORS blue=%d green=%d other=%d\n", b, g, x))
end
"""


def start(args, wait_for, procs):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    deadline = time.time() + 15
    lines = []
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        lines.append(line)
        if wait_for in line:
            # Keep draining stderr (kept for the report) so the child never blocks on a full pipe.
            p.lines = lines
            threading.Thread(target=lambda: [lines.append(l) for l in p.stderr], daemon=True).start()
            return line
    raise SystemExit(f"{' '.join(args)} did not start: {''.join(lines)}")


def port_of(line):
    return int(re.search(r"listening on [^ ]*:(\d+)", line).group(1))


class Control:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def command(self, line):
        self.s.sendall((line + "\n").encode())
        return json.loads(self.f.readline())


class Probe:
    """A keep-alive HTTP/1.1 client that returns the X-Echo-Name of each response."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self):
        self.send()
        return self.receive()

    def send(self):
        self.s.sendall(b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")

    def receive(self):
        """The answer to the request `send` wrote."""
        while b"\r\n\r\n" not in self.buf:
            self.more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buf) < length:
            self.more()
        self.buf = self.buf[length:]
        return headers.get(b"x-echo-name", b"").decode()

    def more(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("the proxy closed the probe's connection")
        self.buf += chunk


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
{servers}
}}
"""


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_nginx(tmp, names, procs):
    ports = dict(zip(names, free_ports(len(names))))
    servers = "\n".join(
        f'  server {{ listen 127.0.0.1:{port}; location / {{ add_header X-Echo-Name {name}; return 200 "{name}\\n"; }} }}'
        for name, port in ports.items())
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, servers=servers))
    procs.append(subprocess.Popen(["nginx", "-p", tmp, "-e", os.path.join(tmp, "nginx.err"), "-c", conf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 5
    for port in ports.values():
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"nginx did not start: {open(os.path.join(tmp, 'nginx.err')).read()}")
                time.sleep(0.02)
    return ports


def pct(values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p * len(s) / 100) - 1))]


def flip_phase(args, control, probe, port, lua, connections, proxy):
    """Flips for args.duration seconds (with wrk running when connections > 0); the measurements."""
    wrk = None
    if connections:
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{args.duration}s", "-s", lua,
                                f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.3)  # let wrk's connections open
    r = {"effects": [], "rtts": [], "late": [], "failed": [], "baseline": []}
    flips = int((args.duration - (0.8 if wrk else 0)) * args.rate)
    t_start = time.perf_counter()
    for i in range(flips):
        t0 = time.perf_counter()
        try:
            reply = control.command("flip checkout")
        except OSError as e:
            raise SystemExit(f"flip {i}: {e}; proxy exit {proxy.poll()}; stderr:\n{''.join(proxy.lines)}")
        t1 = time.perf_counter()
        served = probe.get()
        t2 = time.perf_counter()
        if not reply.get("ok"):
            r["failed"].append(reply)
            continue
        r["rtts"].append((t1 - t0) * 1000)
        r["effects"].append((t2 - t1) * 1000)
        if served != reply["live"]:
            r["late"].append((i, reply["live"], served))
        # The same request half way to the next flip: what a request costs with no flip.
        wait = t_start + (i + 0.5) / args.rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        t3 = time.perf_counter()
        probe.get()
        r["baseline"].append((time.perf_counter() - t3) * 1000)
        wait = t_start + (i + 1) / args.rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    r["elapsed"] = time.perf_counter() - t_start
    r["flips_per_s"] = len(r["effects"]) / r["elapsed"]
    if wrk:
        out = wrk.communicate(timeout=args.duration + 30)[0]
        m = re.search(r"(\d+) requests in", out)
        if not m:
            raise SystemExit(f"wrk failed:\n{out}")
        r["total"] = int(m.group(1))
        r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        r["non2xx"] = int(m.group(1)) if m else 0
        r["colors"] = {k: int(v) for k, v in re.findall(r"(blue|green|other)=(\d+)", out)}
    return r


def report(r):
    e, b, t = r["effects"], r["baseline"], r["rtts"]
    print(f"  flips: {len(e)} ok, {len(r['failed'])} refused, {r['flips_per_s']:.1f}/s over {r['elapsed']:.1f} s; "
          f"first request after the reply on the new color: {len(e) - len(r['late'])}/{len(e)}")
    print(f"  flip effect (reply -> response from the new color): p50 {pct(e, 50):.3f} ms, p99 {pct(e, 99):.3f} ms, "
          f"max {max(e):.3f} ms")
    print(f"  the same request between flips (no flip):          p50 {pct(b, 50):.3f} ms, p99 {pct(b, 99):.3f} ms, "
          f"max {max(b):.3f} ms")
    print(f"  flip command round trip (with the state file fsync): p50 {pct(t, 50):.3f} ms, p99 {pct(t, 99):.3f} ms")
    if r["late"]:
        print("  late:", r["late"][:10])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/release/switchyard"))
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--upstream", choices=["nginx", "echo"], default="nginx" if shutil.which("nginx") else "echo")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} not found: run `swift build -c release` (or pass --binary)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found")
    gc.disable()  # no collector pauses inside the timed requests

    procs = []
    tmp = tempfile.mkdtemp(prefix="sy-flip-")
    try:
        ports = {}
        if args.upstream == "nginx":
            ports = start_nginx(tmp, ("blue", "green", "canary"), procs)
        else:
            for name in ("blue", "green", "canary"):
                line = start([args.binary, "echo", "--listen", "127.0.0.1:0", "--name", name], "listening on", procs)
                ports[name] = port_of(line)
        sock = os.path.join(tmp, "control.sock")
        config = {
            "workers": args.workers,
            "listeners": [{"address": "127.0.0.1:0"}],
            "upstreams": {
                "checkout": {"blue": {"endpoints": [f"127.0.0.1:{ports['blue']}"]},
                             "green": {"endpoints": [f"127.0.0.1:{ports['green']}"]}, "live": "blue"},
                "canary": {"endpoints": [f"127.0.0.1:{ports['canary']}"]},
            },
            "routes": [{"name": "shop", "split": [{"variant": "stable", "upstream": "checkout", "weight": 100},
                                                  {"variant": "canary", "upstream": "canary", "weight": 0}]}],
            "control": {"socket": sock, "stateFile": os.path.join(tmp, "state.json")},
        }
        path = os.path.join(tmp, "switchyard.json")
        with open(path, "w") as f:
            json.dump(config, f)
        line = start([args.binary, "run", "--config", path], "listening on", procs)
        proxy = procs[-1]
        port = port_of(line)
        deadline = time.time() + 5
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.01)
        lua = os.path.join(tmp, "colors.lua")
        with open(lua, "w") as f:
            f.write(WRK_SCRIPT)
        control = Control(sock)
        probe = Probe(port)
        probe.get()

        loaded = flip_phase(args, control, probe, port, lua, args.connections, proxy)
        colors = loaded["colors"]
        print(f"1. under load: wrk -t1 -c{args.connections} for {args.duration} s, proxy workers {args.workers}, "
              f"origins {args.upstream}: {loaded['total']} requests, {loaded['rps']:.0f} req/s, "
              f"socket errors {loaded['socket_errors']}, non-2xx {loaded['non2xx']}, "
              f"blue {colors.get('blue', 0)}, green {colors.get('green', 0)}, other {colors.get('other', 0)}")
        report(loaded)
        quiet = flip_phase(args, control, probe, port, lua, 0, proxy)
        print(f"2. the flip's effect, no other load, {args.duration} s:")
        report(quiet)

        bars = [
            (f"{args.rate:g} flips/s for {args.duration} s under load",
             loaded["flips_per_s"] >= args.rate * 0.95 and not loaded["failed"]),
            ("zero failed requests under load", loaded["socket_errors"] == 0 and loaded["non2xx"] == 0),
            ("every response from blue or green", colors.get("other", 0) == 0),
            ("first request after each flip's reply on the new color", not loaded["late"] and not quiet["late"]),
            ("flip effect p99 < 1 ms", pct(quiet["effects"], 99) < 1.0),
        ]
        for name, passed in bars:
            print(f"  [{'pass' if passed else 'FAIL'}] {name}")
        return 0 if all(p for _, p in bars) else 1
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_all(procs):
    """SIGTERM, newest first, then SIGKILL after 5 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
