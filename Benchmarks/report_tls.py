#!/usr/bin/env python3
"""Print tls.sh results (results.tsv: SCENARIO TARGET KEY VALUE) as tables, ratios and the bars.

A key may appear once per round; numbers are reported as the median over rounds, error counts
and handshake counts as the sum.
"""
import os
import sys
from report import fmt, last, status, table
from results import floats as nums, load, med

ORDER = ["haproxy", "nginx", "switchyard", "baseline"]
NAMES = {"haproxy": "HAProxy", "nginx": "NGINX", "switchyard": "Switchyard", "baseline": "Switchyard (BASELINE)"}


def errors_cell(d):
    total = int(sum(nums(d, "errors")))
    if not total:
        return "0" if d.get("errors") else "-"
    details = "; ".join(x for x in d.get("sockerr_detail", []) if x != "none")
    return f"{total} (non-2xx {int(sum(nums(d, 'non2xx')))}{', ' + details if details else ''})"


def main():
    data = load(sys.argv[1])
    dur = os.environ.get("DURATION", "10")
    rounds = int(os.environ.get("ROUNDS", "3"))
    conns = int(os.environ.get("IDLE_TLS_CONNS", "5000"))
    clients = os.environ.get("T2F_CLIENTS", "8")
    notes = []

    def targets(s):
        present = {t for (sc, t) in data if sc == s}
        return [t for t in ORDER if t in present]

    def rows(s, cells):
        out = []
        for t in targets(s):
            d = data[(s, t)]
            notes.extend(f"({s}) {NAMES[t]}: {n}" for n in d.get("note", []))
            st = status(d)
            out.append([NAMES[t], st] if st else [NAMES[t]] + cells(d))
        return out

    def handshakes(d):
        full, resumed = nums(d, "hs_full"), nums(d, "hs_resumed")
        if not full:
            return "not counted", "-"
        f, r = int(sum(full)), int(sum(resumed))
        return f"{f:,} / {r:,}", (f"{100 * r / (f + r):.0f}%" if f + r else "-")

    runs = f", median of {rounds} rounds" if rounds > 1 else ""
    if targets("t1"):
        table(f"(t1) HTTPS keep-alive, small responses: wrk -t1 -c50 -d{dur}s{runs}",
              ["target", "req/s", "p50 ms", "p99 ms", "errors"],
              rows("t1", lambda d: [fmt(med(d, "rps"), ",.0f"), fmt(med(d, "p50_ms"), ".3f"),
                                    fmt(med(d, "p99_ms"), ".3f"), errors_cell(d)]))
    if targets("t2"):
        table(f"(t2) a new TLS connection per request: wrk -t1 -c50 -H 'Connection: close' -d{dur}s{runs}; "
              "handshakes summed over the rounds",
              ["target", "conn/s", "p50 ms", "p99 ms", "errors", "full / resumed handshakes", "resumed"],
              rows("t2", lambda d: [fmt(med(d, "rps"), ",.0f"), fmt(med(d, "p50_ms"), ".3f"),
                                    fmt(med(d, "p99_ms"), ".3f"), errors_cell(d), *handshakes(d)]))
        shares = {}
        for t in targets("t2"):
            f, r = sum(nums(data[("t2", t)], "hs_full")), sum(nums(data[("t2", t)], "hs_resumed"))
            if f + r:
                shares[t] = 100 * r / (f + r)
        notes.append("(t2) wrk keeps one SSL object per connection slot and, on reconnecting, offers the session "
                     "of its previous connection (SSL_clear keeps it): these are mostly resumed handshakes when "
                     "the server lets them be, not full ones. (t2f) measures full handshakes only.")
        if shares:
            notes.append("(t2) resumed share per target: " + ", ".join(f"{NAMES[t]} {v:.0f}%" for t, v in shares.items())
                         + " (NGINX is not counted)" * ("nginx" in targets("t2")))
            if max(shares.values()) - min(shares.values()) > 10:
                notes.append("(t2) the targets resumed different shares of wrk's connections, so the (t2) ratio "
                             "compares different mixes of full and resumed handshakes; read it with (t2f)")
    if targets("t2f"):
        table(f"(t2f) full handshakes only: {clients} x openssl s_time -new -www / -time {dur}, in parallel{runs}; "
              "handshakes summed over the rounds",
              ["target", "conn/s", "connections", "failed clients", "full / resumed handshakes"],
              rows("t2f", lambda d: [fmt(med(d, "cps"), ",.0f"), fmt(med(d, "conns"), ",.0f"),
                                     f"{int(sum(nums(d, 'errors')))}", handshakes(d)[0]]))
    if targets("t3"):
        table(f"(t3) 1 MiB responses over TLS (/big): wrk -t1 -c10 -d{dur}s{runs}; MB = 10^6 bytes",
              ["target", "req/s", "MB/s", "p50 ms", "p99 ms", "errors"],
              rows("t3", lambda d: [fmt(med(d, "rps"), ",.1f"),
                                    fmt(med(d, "gbps") * 1000 if med(d, "gbps") is not None else None, ",.0f"),
                                    fmt(med(d, "p50_ms"), ".3f"), fmt(med(d, "p99_ms"), ".3f"), errors_cell(d)]))
    if targets("t4"):
        table(f"(t4) RSS per idle TLS keep-alive connection: {conns} connections, a full handshake and one GET "
              f"each, then idle{runs}",
              ["target", "KiB/conn", "RSS before MiB", "RSS after MiB", "conns ok/failed/alive", "RSS of"],
              rows("t4", lambda d: [fmt(med(d, "kib_per_conn"), ".2f"),
                                    fmt((med(d, "rss_before_kib") or 0) / 1024, ".1f"),
                                    fmt((med(d, "rss_after_kib") or 0) / 1024, ".1f"),
                                    f"{last(d, 'conns_ok')}/{last(d, 'conns_failed')}/{last(d, 'conns_alive')}",
                                    last(d, "rss_of")]))
        for t in targets("t4"):
            ok = nums(data[("t4", t)], "conns_ok")
            if ok and min(ok) < conns:
                notes.append(f"(t4) {NAMES[t]}: in one round only {int(min(ok))} of {conns} connections completed their GET")
    if targets("t5"):
        table(f"(t5) plain HTTP, small responses (as compare.sh (a)): wrk -t1 -c50 -d{dur}s{runs}",
              ["target", "req/s", "p50 ms", "p99 ms", "errors"],
              rows("t5", lambda d: [fmt(med(d, "rps"), ",.0f"), fmt(med(d, "p50_ms"), ".3f"),
                                    fmt(med(d, "p99_ms"), ".3f"), errors_cell(d)]))

    # What each target negotiated with a Python client (OpenSSL defaults, like wrk's).
    negotiated = {}
    for (s, t), d in data.items():
        for v in d.get("negotiated", []):
            if "status=" in v and s != "t2f":
                negotiated.setdefault(t, set()).add(v.rsplit(" status=", 1)[0])
    if negotiated:
        print("\nNegotiated (probe before each scenario: Python ssl client, OpenSSL defaults like wrk)")
        for t in ORDER:
            if t in negotiated:
                print(f"  {NAMES[t]}: {'; '.join(sorted(negotiated[t]))}")
        if len({v for vs in negotiated.values() for v in vs}) > 1:
            notes.append("the targets did not all negotiate the same version, cipher and ALPN: the TLS work differs")

    # Ratios Switchyard / anchor, and the bars of issue 9.
    metrics = [
        ("t1", "rps", "(t1) HTTPS req/s", "higher", ">=", 1.0),
        ("t1", "p99_ms", "(t1) HTTPS p99", "lower", "<=", 1.0),
        ("t2", "rps", "(t2) new connections/s (wrk, resumed)", "higher", ">=", 1.0),
        ("t2f", "cps", "(t2f) full handshakes/s (s_time)", "higher", ">=", 1.0),
        ("t3", "gbps", "(t3) 1 MiB throughput MB/s", "higher", ">=", 1.0),
        ("t3", "p99_ms", "(t3) 1 MiB p99", "lower", None, None),
        ("t4", "kib_per_conn", "(t4) RSS per idle TLS conn", "lower", "<=", 1.0),
        ("t5", "rps", "(t5) plain req/s", "higher", None, None),
        ("t5", "p99_ms", "(t5) plain p99", "lower", None, None),
    ]
    baseline = any(t == "baseline" for (_, t) in data)
    out = []
    for s, key, label, better, op, bar in metrics:
        if not targets(s):
            continue
        sy = med(data[(s, "switchyard")], key) if (s, "switchyard") in data else None
        cells = []
        anchors = ["haproxy", "nginx"] + (["baseline"] if baseline else [])
        for anchor in anchors:
            a = med(data[(s, anchor)], key) if (s, anchor) in data else None
            cells.append("n/a" if sy is None or not a else f"{sy / a:.2f}x")
        verdict = ""
        if op and cells[0] != "n/a":
            r = float(cells[0][:-1])
            met = r >= bar if op == ">=" else r <= bar
            verdict = f"bar vs HAProxy {op} {bar:.2f}x: {'met' if met else 'NOT met'}"
        out.append([label, *cells, f"{better} is better", verdict])
    if out:
        header = ["metric", "vs HAProxy", "vs NGINX"] + (["vs BASELINE"] if baseline else []) + ["", "issue 9"]
        table("Ratios Switchyard / anchor (n/a: a side was not measured)", header, out)
    for n in notes:
        print(f"  note: {n}")


if __name__ == "__main__":
    main()
