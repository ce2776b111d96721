#!/usr/bin/env python3
"""Functional check of a split + sticky + rules route before benchmarking it.

usage: probe.py --port P [--cookie sy-exp] [--n 400]

The origin answers "ok" for the stable upstream and "ok2" for the canary one.
Prints one line:
  fresh: stable=N canary=N other=N set-cookie=N | sticky: same=N/M | rule x-canary=always: canary=N/20
and exits 0 when the route visibly splits, sets the cookie, keeps users on
their variant and honours the rule; 1 otherwise (so the caller can say that the
numbers are not measuring the feature). Loopback only.
"""
import argparse
import http.client
import sys


def get(conn, headers):
    conn.request("GET", "/", headers=headers)
    r = conn.getresponse()
    body = r.read().strip()
    cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    return r.status, body, cookies


def variant(status, body):
    if status != 200:
        return f"status{status}"
    return {b"ok": "stable", b"ok2": "canary"}.get(body, "other")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cookie", default="sy-exp")
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)

    tally = {"stable": 0, "canary": 0, "other": 0}
    assigned = []  # (cookie pair, variant)
    with_cookie = 0
    try:
        for _ in range(args.n):
            status, body, cookies = get(conn, {})
            v = variant(status, body)
            tally[v if v in tally else "other"] += 1
            pair = next((c.split(";", 1)[0] for c in cookies if c.startswith(args.cookie + "=")), None)
            if pair:
                with_cookie += 1
                if len(assigned) < 40:
                    assigned.append((pair, v))
        same = total = 0
        for pair, v in assigned:
            total += 1
            if all(variant(*get(conn, {"Cookie": pair})[:2]) == v for _ in range(5)):
                same += 1
        rule = sum(1 for _ in range(20) if variant(*get(conn, {"x-canary": "always"})[:2]) == "canary")
    except (OSError, http.client.HTTPException) as e:
        print(f"probe failed: {type(e).__name__}: {e}")
        return 1
    print(f"fresh: stable={tally['stable']} canary={tally['canary']} other={tally['other']} "
          f"set-cookie={with_cookie} | sticky: same={same}/{total} | rule x-canary=always: canary={rule}/20")
    ok = tally["stable"] > 0 and tally["canary"] > 0 and with_cookie > 0 and total > 0 and same == total and rule == 20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
