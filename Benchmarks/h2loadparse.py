#!/usr/bin/env python3
"""Turn one h2load run (its per-request --log-file and its printed summary) into result rows.

usage: h2loadparse.py LOG SUMMARY SCENARIO TARGET

The log has one line per finished request, tab-separated: start time (microseconds since the
epoch), HTTP status (-1 for a failed stream), microseconds until the end of the response.
Prints tab-separated rows `SCENARIO TARGET KEY VALUE` with keys
  p50_ms p99_ms p999_ms max_ms   nearest-rank percentiles over every response with a status
  requests                       lines in the log (responses and failed streams)
  rps                            achieved rate: h2load's req/s (requests done / main duration),
                                 else requests / (last start - first start) from the log
  non2xx                         responses whose status is not 2xx
  failed                         requests without a response: failed streams (-1 in the log) or
                                 h2load's "errored" count (connection and stream errors,
                                 timeouts), whichever is larger
  errors                         non2xx + failed
Requests still in flight when the duration ends (h2load's "started" - "done") are cut off by
h2load, not failed by the target, and are not counted.
If the log has no response at all, prints one `error` row instead.
"""
import math
import re
import sys


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p of the values at or below it."""
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def main():
    log_path, summary_path, scenario, target = sys.argv[1:5]
    durations, starts = [], []
    non2xx = failed_lines = 0
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) < 3:
                    continue
                try:
                    start, status, micros = int(parts[0]), int(parts[1]), int(parts[2])
                except ValueError:
                    continue
                starts.append(start)
                if status < 0:
                    failed_lines += 1
                    continue
                if not 200 <= status < 300:
                    non2xx += 1
                durations.append(micros)
    except OSError:
        pass
    try:
        summary = open(summary_path, errors="replace").read()
    except OSError:
        summary = ""

    def put(key, value):
        print(f"{scenario}\t{target}\t{key}\t{value}")

    if not durations:
        m = re.search(r"^requests: .*$", summary, re.M)
        last = m.group(0) if m else " ".join(summary.strip().splitlines()[-2:])[:160] or "no output"
        put("error", f"h2load logged no response: {last}")
        return
    durations.sort()
    for key, p in (("p50_ms", 0.50), ("p99_ms", 0.99), ("p999_ms", 0.999), ("max_ms", 1.0)):
        put(key, f"{percentile(durations, p) / 1000:.4f}")
    put("requests", len(starts))
    m = re.search(r"^finished in \S+, ([\d.]+) req/s", summary, re.M)
    span = (max(starts) - min(starts)) / 1e6
    if m:
        put("rps", m.group(1))
    elif span > 0:
        put("rps", f"{len(starts) / span:.1f}")

    # h2load's count: "requests: T total, S started, D done, OK succeeded, F failed, E errored,
    # X timeout". "failed" also counts non-2xx/3xx responses; "errored" only requests without
    # a response (timeouts included).
    errored = 0
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, "
                  r"\d+ failed, (\d+) errored, \d+ timeout", summary)
    if m:
        errored = int(m.group(1))
        put("h2load_summary", m.group(0))
    failed = max(failed_lines, errored)
    put("non2xx", non2xx)
    put("failed", failed)
    put("errors", non2xx + failed)


if __name__ == "__main__":
    main()
