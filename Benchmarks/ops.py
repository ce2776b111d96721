#!/usr/bin/env python3
"""Operations bars (issue: least privilege, systemd, Kubernetes, a fleet).

  1. systemd: `systemd-analyze security --offline=true` on deploy/systemd/switchyard.service,
     with the binary installed at its ExecStart path in a temporary root; bar: exposure <= 2.0.
  2. ConfigMap swap: `switchyard run` with "watchConfig": true reads its config through a
     kubelet-style volume (DIR/switchyard.json -> ..data/switchyard.json, ..data -> ..gN).
     Under wrk load (-t1 -cCONNECTIONS) the `..data` symlink is swapped SWAPS times between two
     upstreams; each swap is timed from the rename to the first request served by the new
     upstream. Then an invalid file is swapped in. Bars: every swap applied within 2 s, zero
     failed requests (socket errors, non-2xx), the invalid file changes nothing for 2.5 s and
     is logged once.
  3. Fleet flip: three instances in front of one blue and one green, each under its own wrk;
     `switchyard ctl --socket A --socket B --socket C flip checkout` FLIPS times, each followed
     by a check that all three serve the same new color; then green is drained on the third
     instance only, so it refuses the next flip. Bars: every flip committed everywhere, the
     refused one changed no instance, zero failed requests.

usage: Benchmarks/ops.py [--binary PATH] [--duration-per-swap 1.0] [--swaps 6] [--flips 10]
                         [--connections 16]
The default binary is .build/release/switchyard, else .build/debug/switchyard. Needs wrk
(apt-get install wrk) and, for (1), systemd-analyze. Exit 1 when a bar fails.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failed = []


def bar(name, ok, detail):
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not ok:
        failed.append(name)


class Proc:
    def __init__(self, args, log):
        self.log = open(log, "w+")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def wait_for(self, pattern, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise SystemExit(f"no /{pattern}/ from {self.p.args}:\n{self.text()}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def served_by(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        c.close()
        return r.getheader("X-Echo-Name") if r.status == 200 else f"status {r.status}"
    except OSError as e:
        return f"error {e}"


def wrk(port, seconds, connections, log):
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", f"http://127.0.0.1:{port}/"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wrk_failures(log):
    text = open(log).read()
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return (int(total.group(1)) if total else 0), errors


def systemd_bar(binary, tmp):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("SKIP  systemd-analyze is not installed")
        return
    root = os.path.join(tmp, "root")
    os.makedirs(root + "/usr/local/bin")
    os.makedirs(root + "/etc/systemd/system")
    shutil.copy(binary, root + "/usr/local/bin/switchyard")
    shutil.copy(REPO + "/deploy/systemd/switchyard.service", root + "/etc/systemd/system/")
    out = subprocess.run([analyze, "security", "--offline=true", f"--root={root}", "--no-pager", "switchyard.service"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Overall exposure level for switchyard.service: ([\d.]+) (\S+)", out)
    score = float(m.group(1)) if m else 99
    bar("systemd-analyze security", score <= 2.0, f"{score} {m.group(2) if m else '?'} (binary at /usr/local/bin/switchyard)")


def config(endpoint, watch=True, extra=""):
    return ('{ "listeners": [ { "address": "127.0.0.1:0" } ], "workers": 2, '
            f'"watchConfig": {"true" if watch else "false"}, '
            f'"upstreams": {{ "app": {{ "endpoints": ["{endpoint}"] }} }}, '
            f'"routes": [ {{ "name": "r", "upstream": "app" }} ]{extra} }}')


def start_echo(binary, tmp, name):
    p = Proc([binary, "echo", "--listen", "127.0.0.1:0", "--name", name], f"{tmp}/echo-{name}.log")
    port = int(p.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    return p, f"127.0.0.1:{port}"


def swap_bar(binary, tmp, args, procs):
    one, one_ep = start_echo(binary, tmp, "one")
    two, two_ep = start_echo(binary, tmp, "two")
    procs += [one, two]
    vol = f"{tmp}/configmap"
    os.makedirs(f"{vol}/..g0")
    with open(f"{vol}/..g0/switchyard.json", "w") as f:
        f.write(config(one_ep))
    os.symlink("..g0", f"{vol}/..data")
    os.symlink("..data/switchyard.json", f"{vol}/switchyard.json")
    generation = 0

    def swap(text):
        nonlocal generation
        old = f"{vol}/..g{generation}"
        generation += 1
        os.makedirs(f"{vol}/..g{generation}")
        with open(f"{vol}/..g{generation}/switchyard.json", "w") as f:
            f.write(text)
        os.symlink(f"..g{generation}", f"{vol}/..data_tmp")
        os.rename(f"{vol}/..data_tmp", f"{vol}/..data")
        shutil.rmtree(old)

    proxy = Proc([binary, "run", "--config", f"{vol}/switchyard.json"], f"{tmp}/proxy-watch.log")
    procs.append(proxy)
    port = int(proxy.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    seconds = args.swaps * args.duration_per_swap + 5
    load = wrk(port, seconds, args.connections, f"{tmp}/wrk-watch.txt")
    time.sleep(1)  # let wrk connect before the first swap
    latencies = []
    for i in range(args.swaps):
        target, endpoint = (("two", two_ep) if i % 2 == 0 else ("one", one_ep))
        start = time.monotonic()
        swap(config(endpoint))
        while served_by(port) != target and time.monotonic() - start < 10:
            time.sleep(0.005)
        latencies.append(time.monotonic() - start)
        time.sleep(max(0, args.duration_per_swap - latencies[-1]))
    current = served_by(port)
    swap("{ broken")
    time.sleep(2.5)
    unchanged = served_by(port) == current
    refusals = proxy.text().count("config file changed: reload refused")
    load.wait()
    total, errors = wrk_failures(f"{tmp}/wrk-watch.txt")
    bar("ConfigMap swap applied within 2 s", max(latencies) <= 2.0,
        f"{len(latencies)} swaps, max {max(latencies):.3f} s, median {sorted(latencies)[len(latencies) // 2]:.3f} s")
    bar("ConfigMap swap under load: zero failed requests", errors == 0 and total > 0, f"{total} requests, {errors} failed")
    bar("invalid ConfigMap: nothing changes, logged once", unchanged and refusals == 1,
        f"still served by {current}: {unchanged}; refusal lines: {refusals}")
    proxy.stop()


def fleet_bar(binary, tmp, args, procs):
    blue, blue_ep = start_echo(binary, tmp, "blue")
    green, green_ep = start_echo(binary, tmp, "green")
    procs += [blue, green]
    ports, sockets = [], []
    for name in "abc":
        sock = f"{tmp}/{name}.sock"
        text = ('{ "listeners": [ { "address": "127.0.0.1:0" } ], "workers": 1, '
                f'"upstreams": {{ "checkout": {{ "blue": {{ "endpoints": ["{blue_ep}"] }}, '
                f'"green": {{ "endpoints": ["{green_ep}"] }}, "live": "blue" }} }}, '
                '"routes": [ { "name": "shop", "upstream": "checkout" } ], '
                f'"control": {{ "socket": "{sock}" }} }}')
        path = f"{tmp}/fleet-{name}.json"
        with open(path, "w") as f:
            f.write(text)
        p = Proc([binary, "run", "--config", path], f"{tmp}/proxy-{name}.log")
        procs.append(p)
        ports.append(int(p.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1)))
        p.wait_for("control socket")
        sockets.append(sock)
    ctl = [binary, "ctl"] + [a for s in sockets for a in ("--socket", s)]
    seconds = args.flips * 0.3 + 4
    loads = [wrk(port, seconds, max(2, args.connections // 4), f"{tmp}/wrk-fleet-{i}.txt") for i, port in enumerate(ports)]
    time.sleep(1)
    agreed, color = 0, "blue"
    flip_times = []
    for _ in range(args.flips):
        start = time.monotonic()
        r = subprocess.run(ctl + ["flip", "checkout"], capture_output=True, text=True)
        flip_times.append(time.monotonic() - start)
        color = "green" if color == "blue" else "blue"
        seen = [served_by(p) for p in ports]
        if r.returncode == 0 and seen == [color] * 3:
            agreed += 1
        time.sleep(0.2)
    # The third instance refuses a flip to green: green is draining there only.
    if color == "green":
        subprocess.run(ctl + ["flip", "checkout"], capture_output=True)
        color = "blue"
    drain = subprocess.run([binary, "ctl", "--socket", sockets[2], "endpoint", "drain", "checkout/green", green_ep],
                           capture_output=True, text=True)
    refused = subprocess.run(ctl + ["flip", "checkout"], capture_output=True, text=True)
    seen = [served_by(p) for p in ports]
    for load in loads:
        load.wait()
    total = errors = 0
    for i in range(3):
        t, e = wrk_failures(f"{tmp}/wrk-fleet-{i}.txt")
        total, errors = total + t, errors + e
    bar("fleet flip: every instance serves the new color", agreed == args.flips,
        f"{agreed}/{args.flips} flips agreed on 3 instances; ctl round trip max {max(flip_times) * 1000:.0f} ms")
    bar("fleet flip with one refusing: no instance changes", drain.returncode == 0 and refused.returncode == 1 and seen == ["blue"] * 3,
        f"exit {refused.returncode}, colors {seen}: {refused.stdout.strip().splitlines()[-1] if refused.stdout else refused.stderr}")
    bar("fleet flips under load: zero failed requests", errors == 0 and total > 0, f"{total} requests, {errors} failed")


def main():
    ap = argparse.ArgumentParser()
    default = next((p for p in (f"{REPO}/.build/release/switchyard", f"{REPO}/.build/debug/switchyard") if os.path.exists(p)), None)
    ap.add_argument("--binary", default=default)
    ap.add_argument("--duration-per-swap", type=float, default=1.0)
    ap.add_argument("--swaps", type=int, default=6)
    ap.add_argument("--flips", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not args.binary:
        raise SystemExit("no switchyard binary: swift build -c release --product switchyard")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    print(f"binary: {args.binary}")
    tmp = tempfile.mkdtemp(prefix="switchyard-ops-")
    procs = []
    try:
        systemd_bar(args.binary, tmp)
        swap_bar(args.binary, tmp, args, procs)
        fleet_bar(args.binary, tmp, args, procs)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
