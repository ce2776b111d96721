// Shadow comparisons merged over the workers: what /metrics writes
// (switchyard_shadow_comparisons_total, switchyard_shadow_response_seconds and the primary's
// latency of the same requests) and what `show shadow [ROUTE]` answers.
import Config
import Proxy
import Routing

package struct ShadowReport {
    package struct Row {
        package var route: String, shadow: String
        package var labels: String
        /// By ShadowResult.
        package var results: [UInt64]
        package var shadowLatency: MetricsReport.Histogram
        package var primaryLatency: MetricsReport.Histogram
        package var compared: UInt64 { results.reduce(0, &+) }
    }

    package var rows: [Row] = []
    /// Newest last, over every worker.
    package var mismatches: [(route: String, shadow: String, m: ShadowMismatch)] = []

    package init(_ metrics: ProxyMetrics, route: String? = nil) {
        let count = LatencyBuckets.count + 1
        func histogram(_ table: KeyPath<WorkerMetrics, SlotTable>, _ id: Int, _ s: SeriesTable.Series) -> MetricsReport.Histogram {
            let h = metrics.totals(table, id)
            return MetricsReport.Histogram(labels: s.labels, values: s.values, buckets: Array(h.prefix(count)),
                                           sumNs: h[LatencyBuckets.sumOffset])
        }
        var names: [Int: (String, String)] = [:]
        for (id, s) in metrics.series.mirrors.all() {
            names[id] = (s.values[0], s.values[1])
            if let route, s.values[0] != route { continue }
            let results = metrics.totals(\.shadowComparisons, id)
            guard results.contains(where: { $0 > 0 }) else { continue }
            rows.append(Row(route: s.values[0], shadow: s.values[1], labels: s.labels, results: results,
                            shadowLatency: histogram(\.shadowResponse, id, s),
                            primaryLatency: histogram(\.shadowPrimaryResponse, id, s)))
        }
        rows.sort { ($0.route, $0.shadow) < ($1.route, $1.shadow) }
        for w in metrics.workers {
            for m in w.shadowMismatches.entries() {
                guard let (r, sh) = names[m.mirrorSeries], route == nil || r == route else { continue }
                mismatches.append((r, sh, m))
            }
        }
        mismatches.sort { $0.m.timeMs < $1.m.timeMs }
        if mismatches.count > ShadowMismatchLog.capacity {
            mismatches.removeFirst(mismatches.count - ShadowMismatchLog.capacity)
        }
    }
}

extension ShadowReport {
    /// What a rollout's shadow stage judges: the comparisons of `route`'s copies to `shadow`,
    /// with both latencies and the last mismatches in words.
    package static func reading(_ metrics: ProxyMetrics, route: String, shadow: String) -> ShadowReading {
        let report = ShadowReport(metrics, route: route)
        guard let row = report.rows.first(where: { $0.shadow == shadow }) else { return ShadowReading() }
        let matched = row.results[ShadowResult.match.rawValue]
        let mismatches = report.mismatches.filter { $0.shadow == shadow }.suffix(3).map {
            "\($0.m.method) \($0.m.path): \($0.m.result.name), status \($0.m.primaryStatus) vs \($0.m.shadowStatus)"
        }
        return ShadowReading(compared: row.compared, matched: matched,
                             shadow: VariantCounts(requests: row.compared, errors: 0, buckets: row.shadowLatency.buckets),
                             primary: VariantCounts(requests: row.compared, errors: 0, buckets: row.primaryLatency.buckets),
                             mismatches: mismatches)
    }
}

