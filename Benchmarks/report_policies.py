#!/usr/bin/env python3
"""Print policies.sh results (results.tsv: PART TARGET KEY VALUE, one row per round) with bars."""
import sys
from results import floats, load, med

LABEL = {
    "sy-plain": "Switchyard plain route",
    "sy-split": "Switchyard split+sticky+rules",
    "sy-mirror": "Switchyard mirror 100% (fast shadow)",
    "sy-slow": "Switchyard mirror 100% (slow shadow)",
    "sy-dead": "Switchyard mirror 100% (dead shadow)",
    "nginx-plain": "NGINX plain proxy",
    "nginx-mirror": "NGINX mirror (fast shadow)",
    "nginx-slow": "NGINX mirror (slow shadow)",
}


def f(v, spec):
    return "-" if v is None else format(v, spec)


def table(title, header, rows):
    print(f"\n{title}")
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(str(r[i])) for r in [header] + full) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    print("  " + fmt(header))
    for r in rows:
        print("  " + (fmt(r) if len(r) == len(header) else str(r[0]).ljust(widths[0]) + "  " + r[1]))


def main():
    data = load(sys.argv[1])
    slow_ms = sys.argv[2] if len(sys.argv) > 2 else "200"
    verdicts, notes = [], []

    def rows(part, names, shadow=False):
        out = []
        for n in names:
            d = data.get((part, n))
            if d is None:
                continue
            for note in d.get("note", []):
                notes.append(f"[{part}] {n}: {note}")
            if "skip" in d or "rps" not in d:
                why = (d.get("skip") or d.get("error") or ["no result"])[0]
                out.append([LABEL[n], "SKIPPED: " + (why if len(why) <= 140 else why[:137] + "...")])
                continue
            rps = floats(d, "rps")
            row = [LABEL[n], f"{med(d, 'rps'):,.0f}", f"{min(rps):,.0f}-{max(rps):,.0f}",
                   f(med(d, "p50_ms"), ".3f"), f(med(d, "p99_ms"), ".3f"),
                   str(int(sum(floats(d, "non2xx")))), str(int(sum(floats(d, "sockerr"))))]
            if shadow:
                got, sent = sum(floats(d, "shadow_received")), sum(floats(d, "shadow_sent"))
                row.append(f"{int(got):,}/{int(sent):,}" if d.get("shadow_sent") else "-")
            out.append(row)
        return out

    head = ["target", "req/s", "range", "p50 ms", "p99 ms", "non-2xx", "sock err"]

    def ratio(part, a, b, key):
        da, db = data.get((part, a)), data.get((part, b))
        if not da or not db:
            return None
        x, y = med(da, key), med(db, key)
        return x / y if x is not None and y else None

    def arrived(part, name, fraction):
        """None if enough shadow copies arrived, else why the bar cannot pass.
        fraction 0 means "at least one" (a slow shadow legitimately sheds copies)."""
        d = data.get((part, name))
        if not d or not d.get("shadow_sent"):
            return None
        got, sent = sum(floats(d, "shadow_received")), sum(floats(d, "shadow_sent"))
        if got <= 0 or got < sent * fraction:
            return f"copies did not arrive at the shadow ({int(got):,} of {int(sent):,})"
        return None

    def bar(name, value, op, limit, invalid=None):
        if value is None:
            verdicts.append(f"  {name}: n/a (not measured)")
            return
        ok = value >= limit if op == ">=" else value <= limit
        verdict = f"FAIL: {invalid}" if invalid else ("PASS" if ok else "FAIL")
        verdicts.append(f"  {name}: {value:.2f}x (bar {op} {limit}x) {verdict}")

    if any(p == "split" for p, _ in data):
        table("[split] plain proxying vs. split 90/10 + sticky cookie + header rule (no cookie sent: "
              "every request is a new user)", head, rows("split", ["sy-plain", "sy-split"]))
        d = data.get(("split", "sy-split"), {})
        if d.get("probe"):
            print(f"  functional probe: {d['probe'][0]}"
                  + ("" if d.get("probe_ok") == ["1"] else "  <-- features NOT in effect; ratio is not meaningful"))
        bar("split req/s / plain req/s", ratio("split", "sy-split", "sy-plain", "rps"), ">=", 0.95)

    if any(p == "mirror" for p, _ in data):
        table("[mirror] 100% mirror to a fast shadow (shadow got / primary requests, measured runs only)",
              head + ["shadow got/sent"],
              rows("mirror", ["sy-plain", "sy-mirror", "nginx-plain", "nginx-mirror"], shadow=True))
        bar("Switchyard mirror req/s / NGINX mirror req/s",
            ratio("mirror", "sy-mirror", "nginx-mirror", "rps"), ">=", 3,
            arrived("mirror", "sy-mirror", 0.99))
        for a, b, what in (("sy-mirror", "sy-plain", "Switchyard"), ("nginx-mirror", "nginx-plain", "NGINX")):
            r = ratio("mirror", a, b, "rps")
            if r is not None:
                notes.append(f"[mirror] {what} keeps {r:.0%} of its unmirrored req/s when mirroring 100%")

    if any(p == "shadowfail" for p, _ in data):
        table(f"[shadowfail] mirror to a {slow_ms} ms shadow and to a dead shadow (nothing listening)",
              head + ["shadow got/sent"],
              rows("shadowfail", ["sy-plain", "sy-slow", "sy-dead", "nginx-plain", "nginx-slow"], shadow=True))
        bar(f"Switchyard p99 with {slow_ms} ms shadow / unmirrored p99",
            ratio("shadowfail", "sy-slow", "sy-plain", "p99_ms"), "<=", 1.2,
            arrived("shadowfail", "sy-slow", 0.0))
        # A dead shadow is ejected (outlierDetection) and its copies are not even built.
        bar("Switchyard p99 with dead shadow / unmirrored p99",
            ratio("shadowfail", "sy-dead", "sy-plain", "p99_ms"), "<=", 1.1)
        for n in ("sy-slow", "sy-dead"):
            d = data.get(("shadowfail", n))
            if d and "rps" in d:
                errs = sum(floats(d, "non2xx")) + sum(floats(d, "sockerr"))
                verdicts.append(f"  {LABEL[n]}: primary errors {int(errs)} (bar: 0) {'PASS' if errs == 0 else 'FAIL'}")
        d = data.get(("shadowfail", "nginx-slow"))
        if d and "p50_ms" in d:
            notes.append(f"[shadowfail] NGINX mirror with the {slow_ms} ms shadow: p50 {med(d, 'p50_ms'):.1f} ms "
                         "(its primary waits for the mirror subrequest)")

    if verdicts:
        print("\nBars")
        print("\n".join(verdicts))
    for n in notes:
        print(f"  note: {n}")


if __name__ == "__main__":
    main()
