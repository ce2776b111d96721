#!/usr/bin/env python3
"""Turn one wrk --latency output file into result rows.

usage: wrkparse.py FILE SCENARIO TARGET [PREFIX]
prints tab-separated rows `SCENARIO TARGET KEY VALUE` with keys
rps, p50_ms, p99_ms, requests, seconds, gbps, non2xx, sockerr, errors
(each key prefixed with PREFIX if given). If the file has no
"Requests/sec" line, prints one `error` row instead.
"""
import re
import sys

TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * TIME[m.group(2)] if m else None


def main():
    path, scenario, target = sys.argv[1:4]
    prefix = sys.argv[4] if len(sys.argv) > 4 else ""
    text = open(path, errors="replace").read()
    rows = []

    def put(key, value):
        rows.append(f"{scenario}\t{target}\t{prefix}{key}\t{value}")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        last = " ".join(text.strip().splitlines()[-2:])[:160] or "no output"
        print(f"{scenario}\t{target}\t{prefix}error\twrk failed: {last}")
        return
    put("rps", rps.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m and ms(m.group(1)) is not None:
            put(key, f"{ms(m.group(1)):.4f}")
    m = re.search(r"(\d+) requests in (\S+), ([\d.]+)(B|KB|MB|GB|TB) read", text)
    if m:
        secs = (ms(m.group(2)) or 0) / 1e3
        nbytes = float(m.group(3)) * SIZE[m.group(4)]
        put("requests", m.group(1))
        put("seconds", f"{secs:.3f}")
        if secs > 0:
            put("gbps", f"{nbytes / secs / 1e9:.4f}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    n2 = int(non2xx.group(1)) if non2xx else 0
    se = sum(int(x) for x in sock.groups()) if sock else 0
    put("non2xx", n2)
    put("sockerr", se)
    put("sockerr_detail", sock.group(0) if sock else "none")
    put("errors", n2 + se)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
