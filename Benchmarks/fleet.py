#!/usr/bin/env python3
"""Fleet mode at ten instances: how fast a flip written to etcd reaches every instance, what a
leader election costs the traffic, and what fleet mode costs an idle instance.

Starts a 3-member etcd cluster (`--heartbeat-interval 50 --election-timeout 500`, as the tests'
EtcdCluster: an election takes about half a second instead of etcd's default 1 s timeout), one
nginx with a blue and a green server (flip.py's), ten fleet instances (`"fleet"` section, the
three etcd members, one prefix) and ten plain instances with the same config otherwise, every
instance `"workers": 1` with a control socket. Then:

  1. idle: nothing happens for IDLE seconds; per instance VmRSS (and RssAnon, its anonymous
     part) at the end and CPU time (/proc/PID/stat utime + stime) over the window, mean of the
     ten fleet instances against the mean of the ten plain ones. Bars: fleet - plain <= 1 MiB
     VmRSS and <= 0.1% of a core.
  2. fleet flips: wrk on every fleet instance (-t1 -cCONNECTIONS, each connection waiting
     DELAY ms after each answer: a light closed loop) and a probe (one keep-alive connection
     per instance, a request every PROBE ms, all in one thread) that timestamps the first
     answer from the new color on each instance. FLIPS flips, each `flip checkout` on the next
     instance's control socket in turn: commit = its reply (the etcd transaction returned and
     that instance applied the revision). Per flip: commit -> the last instance's first answer
     from the new color (0 when every instance already served it at the reply), and command
     start -> the same. Bars: 0 failed requests, every flip on every instance, p99 <= 50 ms.
  3. the same FLIPS with `switchyard ctl --socket A ... --socket J flip checkout` on the ten
     plain instances (all or nothing over ten control sockets; commit = ctl's exit), measured
     the same way under the same load, for comparison (no bar).
  4. leader killed: fleet flips under load as in 2; before flip KILL_AT the etcd leader gets
     SIGKILL. A flip refused during the election is sent again every 50 ms until one commits.
     Bars: 0 failed requests, every flip committed and served by every instance.

usage: Benchmarks/fleet.py [--binary PATH] [--instances 10] [--flips 100] [--idle 60]
                           [--connections 2] [--delay-ms 10] [--probe-ms 5] [--kill-flips 30]
Build first: swift build -c release --product switchyard. Needs etcd (apt-get install
etcd-server), nginx and wrk. Exit 1 when a bar fails.
"""
import argparse
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import flip  # noqa: E402  (Control, Probe, start, port_of, free_ports, start_nginx, pct, stop_all, WRK_SCRIPT)
import ops  # noqa: E402  (wrk_failures)

REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PREFIX = "/switchyard/bench/"


# --- etcd ----------------------------------------------------------------------------------

class Etcd:
    """A 3-member etcd cluster on loopback, flags as Tests/TestSupport/EtcdCluster.swift."""

    def __init__(self, tmp, size=3):
        ports = flip.free_ports(2 * size)
        self.tmp = tmp
        self.members = [{"name": f"m{i}", "client": ports[2 * i], "peer": ports[2 * i + 1], "proc": None} for i in range(size)]
        cluster = ",".join(f"{m['name']}=http://127.0.0.1:{m['peer']}" for m in self.members)
        for m in self.members:
            url, peer = f"http://127.0.0.1:{m['client']}", f"http://127.0.0.1:{m['peer']}"
            m["proc"] = subprocess.Popen(
                ["etcd", "--name", m["name"], "--data-dir", f"{tmp}/etcd-{m['name']}",
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", tmp,
                 "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn"],
                stdout=open(f"{tmp}/etcd-{m['name']}.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        for m in self.members:
            while '"health":"true"' not in (self.call(m, "GET", "/health") or ""):
                if time.time() > deadline:
                    log = f"{tmp}/etcd-{m['name']}.log"
                    raise SystemExit(f"etcd {m['name']} not healthy: {open(log).read()[-2000:]}")
                time.sleep(0.05)

    @property
    def urls(self):
        return [f"http://127.0.0.1:{m['client']}" for m in self.members]

    @staticmethod
    def call(member, method, path, body=None):
        try:
            c = http.client.HTTPConnection("127.0.0.1", member["client"], timeout=2)
            c.request(method, path, body=body)
            text = c.getresponse().read().decode()
            c.close()
            return text
        except OSError:
            return None

    def leader(self):
        for m in self.members:
            if m["proc"].poll() is not None:
                continue
            answer = self.call(m, "POST", "/v3/maintenance/status", "{}")
            if answer:
                status = json.loads(answer)
                if status.get("leader") == status.get("header", {}).get("member_id"):
                    return m
        return None

    def stop(self):
        for m in self.members:
            if m["proc"].poll() is None:
                m["proc"].kill()
                m["proc"].wait()


# --- instances -----------------------------------------------------------------------------

class Instance:
    def __init__(self, binary, tmp, name, ports, etcd, procs):
        self.name = name
        self.socket = f"{tmp}/{name}.sock"
        config = {
            "workers": 1,
            "listeners": [{"address": "127.0.0.1:0"}],
            "upstreams": {"checkout": {"blue": {"endpoints": [f"127.0.0.1:{ports['blue']}"]},
                                       "green": {"endpoints": [f"127.0.0.1:{ports['green']}"]}, "live": "blue"}},
            "routes": [{"name": "shop", "upstream": "checkout"}],
            "control": {"socket": self.socket},
        }
        if etcd:
            config["fleet"] = {"etcd": {"endpoints": etcd.urls, "prefix": PREFIX}, "instance": name}
        path = f"{tmp}/{name}.json"
        with open(path, "w") as f:
            json.dump(config, f)
        self.port = flip.port_of(flip.start([binary, "run", "--config", path], "listening on", procs))
        self.proc = procs[-1]
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            if time.time() > deadline:
                raise SystemExit(f"{name}: no control socket: {''.join(self.proc.lines)}")
            time.sleep(0.01)
        self.control = None

    def command(self, line):
        if self.control is None:
            self.control = flip.Control(self.socket)
            self.control.s.settimeout(30)
        return self.control.command(line)

    def memory_kib(self):
        """VmRSS, and the anonymous part of it (RssAnon: this process's own), from /proc/PID/status."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


# --- load and probe ------------------------------------------------------------------------

class Load:
    """wrk on every instance: -t1 -cCONNECTIONS, DELAY ms between an answer and the next request."""

    def __init__(self, tmp, instances, args, tag):
        lua = f"{tmp}/light.lua"
        with open(lua, "w") as f:
            f.write(flip.WRK_SCRIPT + f"function delay() return {args.delay_ms} end\n")
        self.logs = [f"{tmp}/wrk-{tag}-{i.name}.txt" for i in instances]
        self.procs = [subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", "-d3600s", "-s", lua, f"http://127.0.0.1:{i.port}/"],
                                       stdout=open(log, "w"), stderr=subprocess.STDOUT) for i, log in zip(instances, self.logs)]

    def stop(self):
        """Requests and failed requests (socket errors, non-2xx, neither blue nor green)."""
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait(timeout=30)
        total = failed = 0
        for log in self.logs:
            t, e = ops.wrk_failures(log)
            other = [line for line in open(log) if line.startswith("COLORS")]
            total += t
            failed += e + (int(other[0].rsplit("other=", 1)[1]) if other else t)
        return total, failed


class Watcher(threading.Thread):
    """One keep-alive connection per instance, a request every `interval` s on each, all in one
    thread: the color each instance serves and when each change was first seen."""

    def __init__(self, instances, interval):
        super().__init__(daemon=True)
        self.probes = [flip.Probe(i.port) for i in instances]
        self.interval = interval
        self.color = [p.get() for p in self.probes]
        self.changes = [[] for _ in instances]  # per instance: (time, color)
        self.requests = 0
        self.failed = []
        self.running = True

    def run(self):
        due = [0.0] * len(self.probes)
        waiting = {}
        while self.running:
            now = time.perf_counter()
            for i, p in enumerate(self.probes):
                if p.s not in waiting and now >= due[i]:
                    p.send()
                    waiting[p.s] = i
                    due[i] = now + self.interval
            idle = [due[i] for i, p in enumerate(self.probes) if p.s not in waiting]
            timeout = max(0.0, min(idle) - time.perf_counter()) if idle else 0.05
            ready, _, _ = select.select(list(waiting), [], [], min(timeout, 0.05))
            for s in ready:
                i = waiting.pop(s)
                try:
                    served = self.probes[i].receive()
                except OSError as e:
                    self.failed.append(f"instance {i}: {e}")
                    self.running = False
                    return
                t = time.perf_counter()
                self.requests += 1
                if served not in ("blue", "green"):
                    self.failed.append(f"instance {i}: {served or 'no color'}")
                elif served != self.color[i]:
                    self.color[i] = served
                    self.changes[i].append((t, served))

    def first_seen(self, color, since):
        """Per instance, when it first answered `color` at or after `since` (None: not yet)."""
        return [next((t for t, c in ch if c == color and t >= since), None) for ch in self.changes]

    def all_serve(self, color, timeout):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(c == color for c in self.color):
                return True
            time.sleep(0.001)
        return False

    def stop(self):
        self.running = False
        self.join(timeout=5)


# --- phases --------------------------------------------------------------------------------

def idle_phase(fleet, plain, seconds):
    time.sleep(2)  # start-up work done
    before = {i.name: i.cpu_ticks() for i in fleet + plain}
    time.sleep(seconds)
    out = {}
    for tag, group in (("fleet", fleet), ("plain", plain)):
        cpu = [(i.cpu_ticks() - before[i.name]) / CLK_TCK / seconds * 100 for i in group]
        rss, anon = zip(*(i.memory_kib() for i in group))
        out[tag] = {"rss": sum(rss) / len(rss), "rss_range": (min(rss), max(rss)), "anon": sum(anon) / len(anon),
                    "cpu": sum(cpu) / len(cpu), "cpu_max": max(cpu)}
    return out


def flips(instances, watcher, count, flip_once, expect, kill=None):
    """`count` flips; each waits until every instance serves the new color, then a pause."""
    r = {"from_commit": [], "from_start": [], "median": [], "spread": [], "missing": 0, "retries": 0, "longest_commit": 0.0}
    for n in range(count):
        if kill and n == kill[0]:
            kill[1]()
        new = "green" if expect == "blue" else "blue"
        t0 = time.perf_counter()
        while True:
            ok, why = flip_once(n)
            if ok or not kill:
                break
            r["retries"] += 1  # refused during the election: once a leader answers it commits
            if time.perf_counter() - t0 > 20:
                break
            time.sleep(0.05)
        t1 = time.perf_counter()
        r["longest_commit"] = max(r["longest_commit"], t1 - t0)
        if not ok:
            raise SystemExit(f"flip {n} refused: {why}")
        expect = new
        if not watcher.all_serve(new, 5):
            r["missing"] += 1
        seen = watcher.first_seen(new, t0)
        if all(t is not None for t in seen):
            last = max(seen)
            r["from_commit"].append(max(0.0, last - t1) * 1000)
            r["from_start"].append((last - t0) * 1000)
            # Is the last one late with the others (the change reached every instance late), or
            # alone (one instance, or the probe, did not get a CPU in time)?
            median = sorted(seen)[len(seen) // 2]
            r["median"].append(max(0.0, median - t1) * 1000)
            r["spread"].append((last - median) * 1000)
        time.sleep(0.1)
    return r, expect


def fleet_flip(instances):
    def once(n):
        reply = instances[n % len(instances)].command("flip checkout")
        return reply.get("ok"), reply.get("error")
    return once


def ctl_flip(binary, instances):
    argv = [binary, "ctl"] + [a for i in instances for a in ("--socket", i.socket)] + ["flip", "checkout"]

    def once(n):
        r = subprocess.run(argv, capture_output=True, text=True)
        return r.returncode == 0, (r.stdout + r.stderr)[-500:]
    return once


def measured(name, instances, args, tmp, flip_once, kill=None, count=None):
    load = Load(tmp, instances, args, name)
    watcher = Watcher(instances, args.probe_ms / 1000)
    watcher.start()
    time.sleep(1)  # wrk connected, probe polling
    try:
        r, _ = flips(instances, watcher, count or args.flips, flip_once, watcher.color[0], kill)
    finally:
        watcher.stop()
        total, failed = load.stop()
    r.update(requests=total + watcher.requests, failed=failed + len(watcher.failed), probe_failures=watcher.failed[:5])
    return r


def line(name, r, flips_wanted):
    c, s = r["from_commit"], r["from_start"]
    text = (f"  {name}: {len(c)}/{flips_wanted} flips seen on every instance, {r['missing']} not within 5 s; "
            f"{r['requests']} requests, {r['failed']} failed")
    if c:
        text += (f"\n    commit -> last instance on the new color: p50 {flip.pct(c, 50):.1f} ms, p90 {flip.pct(c, 90):.1f} ms, p99 {flip.pct(c, 99):.1f} ms, "
                 f"max {max(c):.1f} ms ({sum(1 for x in c if x == 0)} already everywhere at the commit)"
                 f"\n    command start -> last instance:         p50 {flip.pct(s, 50):.1f} ms, p90 {flip.pct(s, 90):.1f} ms, p99 {flip.pct(s, 99):.1f} ms, "
                 f"max {max(s):.1f} ms"
                 f"\n    commit -> median instance:              p50 {flip.pct(r['median'], 50):.1f} ms, p90 {flip.pct(r['median'], 90):.1f} ms, "
                 f"p99 {flip.pct(r['median'], 99):.1f} ms; last - median instance: p50 {flip.pct(r['spread'], 50):.1f} ms, "
                 f"p90 {flip.pct(r['spread'], 90):.1f} ms, p99 {flip.pct(r['spread'], 99):.1f} ms")
    if r["retries"]:
        text += f"\n    {r['retries']} refused attempts during the election; longest flip to commit {r['longest_commit'] * 1000:.0f} ms"
    if r["probe_failures"]:
        text += f"\n    probe: {r['probe_failures']}"
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/release/switchyard"))
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--delay-ms", type=int, default=10)
    ap.add_argument("--probe-ms", type=float, default=5)
    ap.add_argument("--kill-flips", type=int, default=30)
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} not found: run `swift build -c release --product switchyard` (or pass --binary)")
    for tool in ("etcd", "nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install etcd-server nginx-light wrk)")

    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}, {os.cpu_count()} CPUs")
    procs = []
    tmp = tempfile.mkdtemp(prefix="sy-fleet-")
    etcd = None
    try:
        etcd = Etcd(tmp)
        ports = flip.start_nginx(tmp, ("blue", "green"), procs)
        fleet = [Instance(args.binary, tmp, f"f{i}", ports, etcd, procs) for i in range(args.instances)]
        plain = [Instance(args.binary, tmp, f"p{i}", ports, None, procs) for i in range(args.instances)]

        idle = idle_phase(fleet, plain, args.idle)
        f_idle, p_idle = idle["fleet"], idle["plain"]
        d_rss, d_cpu = f_idle["rss"] - p_idle["rss"], f_idle["cpu"] - p_idle["cpu"]
        print(f"1. idle {args.idle:g} s, mean of {args.instances} instances each:")
        for tag, v in idle.items():
            print(f"  {tag}: VmRSS {v['rss']:.0f} KiB ({v['rss_range'][0]}-{v['rss_range'][1]}), of it anonymous "
                  f"{v['anon']:.0f} KiB; CPU {v['cpu']:.3f}% of a core (max {v['cpu_max']:.3f}%)")
        print(f"  fleet mode costs {d_rss:+.0f} KiB VmRSS ({f_idle['anon'] - p_idle['anon']:+.0f} KiB anonymous, the rest "
              f"file-backed pages of shared libraries, shared between instances) and {d_cpu:+.3f}% of a core per instance")

        fleet_r = measured("fleet", fleet, args, tmp, fleet_flip(fleet))
        print(f"2. load: wrk -t1 -c{args.connections} with {args.delay_ms} ms between requests on each instance; "
              f"probe every {args.probe_ms:g} ms per instance")
        print(line(f"fleet, {args.instances} instances, flip on a control socket (etcd transaction)", fleet_r, args.flips))
        ctl_r = measured("ctl", plain, args, tmp, ctl_flip(args.binary, plain))
        print("3. the same flips, no etcd:")
        print(line(f"ctl --socket x{args.instances} (all or nothing over the control sockets)", ctl_r, args.flips))

        killed = []

        def kill_leader():
            m = etcd.leader()
            if m:
                m["proc"].kill()
                m["proc"].wait()
                killed.append(m["name"])

        kill_r = measured("kill", fleet, args, tmp, fleet_flip(fleet), kill=(args.kill_flips // 3, kill_leader), count=args.kill_flips)
        print(f"4. etcd leader ({', '.join(killed) or 'none found'}) SIGKILLed before flip {args.kill_flips // 3 + 1} of {args.kill_flips}:")
        print(line("fleet flips through the election", kill_r, args.kill_flips))
        print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")

        bars = [
            ("idle: fleet mode RSS <= 1 MiB per instance", d_rss <= 1024, f"{d_rss:+.0f} KiB"),
            ("idle: fleet mode CPU <= 0.1% of a core per instance", d_cpu <= 0.1, f"{d_cpu:+.3f}%"),
            ("fleet flips: 0 failed requests", fleet_r["failed"] == 0 and fleet_r["requests"] > 0, f"{fleet_r['failed']} of {fleet_r['requests']}"),
            ("fleet flips: every flip served by every instance", len(fleet_r["from_commit"]) == args.flips and not fleet_r["missing"],
             f"{len(fleet_r['from_commit'])}/{args.flips}"),
            ("fleet flips: commit -> last instance p99 <= 50 ms", bool(fleet_r["from_commit"]) and flip.pct(fleet_r["from_commit"], 99) <= 50,
             f"{flip.pct(fleet_r['from_commit'], 99):.1f} ms" if fleet_r["from_commit"] else "none"),
            ("leader killed: 0 failed requests", kill_r["failed"] == 0 and kill_r["requests"] > 0 and bool(killed),
             f"{kill_r['failed']} of {kill_r['requests']}, killed {killed}"),
            ("leader killed: every flip committed and served everywhere",
             len(kill_r["from_commit"]) == args.kill_flips and not kill_r["missing"], f"{len(kill_r['from_commit'])}/{args.kill_flips}"),
        ]
        print(f"\n| bar | measured | |\n|---|---|---|")
        for name, ok, detail in bars:
            print(f"| {name} | {detail} | {'pass' if ok else 'FAIL'} |")
        return 0 if all(ok for _, ok, _ in bars) else 1
    finally:
        flip.stop_all(procs)
        if etcd:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
