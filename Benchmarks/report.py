#!/usr/bin/env python3
"""Print compare.sh results (results.tsv: SCENARIO TARGET KEY VALUE) as tables + ratios.

A key may appear once per round; numbers are reported as the median over rounds,
error counts as the sum.
"""
import os
import sys
from results import floats as nums, load, med

ORDER = ["haproxy", "nginx", "switchyard", "baseline", "direct"]
NAMES = {"haproxy": "HAProxy", "nginx": "NGINX", "switchyard": "Switchyard", "baseline": "baseline", "direct": "direct"}


def last(d, key, default="-"):
    v = d.get(key)
    return v[-1] if v else default


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def status(d):
    for key, label in (("skip", "SKIPPED: "), ("error", "ERROR: ")):
        if key in d:
            msg = last(d, key)
            return label + (msg if len(msg) <= 140 else msg[:137] + "...")
    return None


def table(title, header, rows):
    print(f"\n{title}")
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(str(r[i])) for r in [header] + full) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    print("  " + line(header).rstrip())
    for r in rows:
        print("  " + (line(r) if len(r) == len(header) else str(r[0]).ljust(widths[0]) + "  " + r[1]))


def main():
    data = load(sys.argv[1])
    dur = os.environ.get("DURATION", "10")
    rounds = int(os.environ.get("ROUNDS", "1"))
    conns = int(os.environ.get("IDLE_CONNS", "9000"))
    want_d = int(os.environ.get("D_REQUESTS", "1000000"))
    notes = []

    def targets(scenario):
        present = {t for (s, t) in data if s == scenario}
        return [t for t in ORDER if t in present]

    def rows(s, cells):
        out = []
        for t in targets(s):
            d = data[(s, t)]
            notes.extend(f"({s}) {NAMES[t]}: {n}" for n in d.get("note", []))
            st = status(d)
            out.append([NAMES[t], st] if st else [NAMES[t]] + cells(d))
        return out

    def errors(d):
        total = int(sum(nums(d, "errors")))
        if not total:
            return "0" if d.get("errors") else "-"
        details = "; ".join(x for x in d.get("sockerr_detail", []) if x != "none")
        return f"{total} (non-2xx {int(sum(nums(d, 'non2xx')))}{', ' + details if details else ''})"

    runs = f", median of {rounds} rounds" if rounds > 1 else ""
    if targets("a"):
        table(f"(a) small responses, keep-alive: wrk -t1 -c50 -d{dur}s{runs}",
              ["target", "req/s", "p50 ms", "p99 ms", "errors"],
              rows("a", lambda d: [fmt(med(d, "rps"), ",.0f"), fmt(med(d, "p50_ms"), ".3f"),
                                   fmt(med(d, "p99_ms"), ".3f"), errors(d)]))
    if targets("b"):
        table(f"(b) 1 MiB responses (/big): wrk -t1 -c10 -d{dur}s{runs}; GB = 10^9 bytes",
              ["target", "req/s", "p50 ms", "p99 ms", "GB/s", "errors"],
              rows("b", lambda d: [fmt(med(d, "rps"), ",.0f"), fmt(med(d, "p50_ms"), ".3f"),
                                   fmt(med(d, "p99_ms"), ".3f"), fmt(med(d, "gbps"), ".2f"), errors(d)]))
    if targets("c"):
        table(f"(c) RSS per idle keep-alive connection: {conns} connections, one GET each, then idle",
              ["target", "KiB/conn", "RSS before MiB", "RSS after MiB", "conns ok/failed/alive", "RSS of"],
              rows("c", lambda d: [fmt(med(d, "kib_per_conn"), ".2f"),
                                   fmt((med(d, "rss_before_kib") or 0) / 1024, ".1f"),
                                   fmt((med(d, "rss_after_kib") or 0) / 1024, ".1f"),
                                   f"{last(d, 'conns_ok')}/{last(d, 'conns_failed')}/{last(d, 'conns_alive')}",
                                   last(d, "rss_of")]))
        for t in targets("c"):
            d = data[("c", t)]
            ok = med(d, "conns_ok")
            if ok is not None and ok < conns:
                notes.append(f"(c) {NAMES[t]}: only {int(ok)} of {conns} connections completed their GET")
    if targets("d"):
        table("(d) no growth: RSS after 10k requests vs. at the end of the run (wrk -t1 -c50)",
              ["target", "RSS@10k KiB", "RSS@end KiB", "growth %", "requests", "errors", "RSS of"],
              rows("d", lambda d: [last(d, "rss_first_kib"), last(d, "rss_last_kib"),
                                   fmt(med(d, "growth_pct"), "+.2f"),
                                   f"{int(med(d, 'requests_total') or 0):,}",
                                   last(d, "last_errors"), last(d, "rss_of")]))
        for t in targets("d"):
            got = med(data[("d", t)], "requests_total")
            if got is not None and got < want_d * 0.99:
                notes.append(f"(d) {NAMES[t]}: only {int(got):,} of {want_d:,} requests were made "
                             "(time bound reached); the growth covers fewer requests")

    if targets("e"):
        pairs = int(os.environ.get("E_PAIRS", "6"))
        e_rps = int(os.environ.get("E_RPS", "400"))
        e_conns = int(os.environ.get("E_CONNS", "50"))
        offered = e_rps * e_conns

        def spread(d, key):  # "median [min-max]" over rounds
            v = nums(d, key)
            if not v:
                return "-"
            return f"{med(d, key):.3f} [{min(v):.3f}-{max(v):.3f}]"

        def e_errors(d, key):
            v = nums(d, key)
            return f"{int(sum(v))}" if v else "-"

        table(f"(e) latency at a steady rate: h2load --h1 -t1 -c{e_conns} --rps {e_rps} "
              f"-D{os.environ.get('E_DURATION', '10')} ({offered:,} req/s offered), {pairs} alternating "
              f"round(s); median [min-max] over rounds, errors summed",
              ["target", "req/s achieved", "p50 ms", "p99 ms", "p99.9 ms", "non-2xx", "failed"],
              rows("e", lambda d: [fmt(med(d, "rps"), ",.0f"), spread(d, "p50_ms"), spread(d, "p99_ms"),
                                   spread(d, "p999_ms"), e_errors(d, "non2xx"), e_errors(d, "failed")]))
        for t in targets("e"):
            d = data[("e", t)]
            short = [r for r in nums(d, "rps") if r < offered * 0.95]
            if short:
                notes.append(f"(e) {NAMES[t]}: {len(short)} of {len(nums(d, 'rps'))} rounds reached less than 95% "
                             f"of the {offered:,} req/s offered (lowest {min(short):,.0f}): the target or the "
                             "machine did not keep up, or connections failed (h2load does not count requests it "
                             "could not send); the percentiles of those rounds leave out the time requests "
                             "waited to be sent, so they understate the tail")
            for key in ("error",):
                for msg in d.get(key, []):
                    notes.append(f"(e) {NAMES[t]}: a round failed: {msg}")

    # ratios: Switchyard / anchor
    metrics = [
        ("a", "rps", "(a) req/s", "higher"),
        ("a", "p99_ms", "(a) p99 latency", "lower"),
        ("b", "rps", "(b) req/s", "higher"),
        ("b", "gbps", "(b) throughput GB/s", "higher"),
        ("b", "p99_ms", "(b) p99 latency", "lower"),
        ("c", "kib_per_conn", "(c) RSS per idle conn", "lower"),
        ("e", "p50_ms", "(e) p50 at a steady rate", "lower"),
        ("e", "p99_ms", "(e) p99 at a steady rate", "lower"),
        ("e", "p999_ms", "(e) p99.9 at a steady rate", "lower"),
    ]
    out = []
    for s, key, label, better in metrics:
        if not targets(s):
            continue
        sy = med(data[(s, "switchyard")], key) if (s, "switchyard") in data else None
        cells = []
        for anchor in ("haproxy", "nginx", "baseline"):
            a = med(data[(s, anchor)], key) if (s, anchor) in data else None
            cells.append("n/a" if sy is None or not a else f"{sy / a:.2f}x")
        out.append([label, cells[0], cells[1], cells[2], f"{better} is better"])
    if out:
        table("Ratios Switchyard / anchor (n/a: a side was not measured)",
              ["metric", "vs HAProxy", "vs NGINX", "vs baseline", ""], out)
    if ("d", "switchyard") in data and "growth_pct" in data[("d", "switchyard")]:
        d = data[("d", "switchyard")]
        print(f"  (d) Switchyard RSS growth 10k -> {int(med(d, 'requests_total') or 0):,} requests: "
              f"{med(d, 'growth_pct'):+.2f}% ({last(d, 'rss_first_kib')} -> {last(d, 'rss_last_kib')} KiB)")
    for n in notes:
        print(f"  note: {n}")


if __name__ == "__main__":
    main()
