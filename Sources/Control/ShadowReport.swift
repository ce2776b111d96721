// Shadow comparisons merged over the workers: what /metrics writes
// (switchyard_shadow_comparisons_total, switchyard_shadow_response_seconds and the primary's
// latency of the same requests) and what `show shadow [ROUTE]` answers.
import Proxy
import Routing

struct ShadowReport {
    struct Row {
        var route: String, shadow: String
        var labels: String
        /// By ShadowResult.
        var results: [UInt64]
        var shadowLatency: MetricsReport.Histogram
        var primaryLatency: MetricsReport.Histogram
        var compared: UInt64 { results.reduce(0, &+) }
    }

    var rows: [Row] = []
    /// Newest last, over every worker.
    var mismatches: [(route: String, shadow: String, m: ShadowMismatch)] = []

    init(_ metrics: ProxyMetrics, route: String? = nil) {
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

extension AdminMetrics {
    func shadow(_ w: inout PrometheusText) {
        let r = ShadowReport(server.metrics)
        guard !r.rows.isEmpty else { return }
        var samples: [(labels: String, value: UInt64)] = []
        for row in r.rows {
            for result in ShadowResult.allCases {
                samples.append((row.labels + ",result=\"\(result.name)\"", row.results[result.rawValue]))
            }
        }
        w.family("switchyard_shadow_comparisons_total", .counter,
                 "Shadow answers compared with the primary's, by route, shadow upstream and result.", samples)
        w.family("switchyard_shadow_response_seconds", .histogram, "Shadow copy sent to its answer complete, compared requests.")
        for row in r.rows where row.shadowLatency.count > 0 {
            w.histogram("switchyard_shadow_response_seconds", row.labels, buckets: row.shadowLatency.buckets,
                        sumNs: row.shadowLatency.sumNs)
        }
        w.family("switchyard_shadow_primary_response_seconds", .histogram,
                 "The primary's request duration for the same compared requests.")
        for row in r.rows where row.primaryLatency.count > 0 {
            w.histogram("switchyard_shadow_primary_response_seconds", row.labels, buckets: row.primaryLatency.buckets,
                        sumNs: row.primaryLatency.sumNs)
        }
    }
}

extension ControlShow {
    /// `show shadow [ROUTE]`: per compared mirror, counts by result, the match rate, p50/p99 of
    /// the shadow and of the primary; then the last mismatches.
    static func shadow(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(0, optional: 1)
        let state = c.state
        guard let server = state.server else { throw ControlError("show shadow: the proxy is not running yet") }
        var route: String?
        if let name = args.first { route = try c.route(name).name }
        let report = ShadowReport(server.metrics, route: route)
        func ms(_ h: MetricsReport.Histogram, _ q: Double) -> ControlValue {
            h.quantileMs(q).map { $0.isFinite ? ControlValue.double($0) : ControlValue.string(">30000") } ?? .null
        }
        let rows = report.rows.map { r -> ControlValue in
            var counts: ControlValue = [:]
            for result in ShadowResult.allCases { counts.set(result.name, ControlValue(r.results[result.rawValue])) }
            let compared = r.compared
            let matched = r.results[ShadowResult.match.rawValue]
            return [
                "route": .string(r.route), "shadow": .string(r.shadow), "compared": ControlValue(compared),
                "matchRate": .double(compared > 0 ? (Double(matched) / Double(compared) * 10_000).rounded() / 10_000 : 0),
                "results": counts,
                "shadowP50Ms": ms(r.shadowLatency, 0.5), "shadowP99Ms": ms(r.shadowLatency, 0.99),
                "primaryP50Ms": ms(r.primaryLatency, 0.5), "primaryP99Ms": ms(r.primaryLatency, 0.99),
            ]
        }
        let mismatches = report.mismatches.map { e -> ControlValue in
            [
                "route": .string(e.route), "shadow": .string(e.shadow), "result": .string(e.m.result.name),
                "method": .string(e.m.method), "path": .string(e.m.path),
                "status": ControlValue(UInt64(e.m.primaryStatus)), "shadowStatus": ControlValue(UInt64(e.m.shadowStatus)),
                "requestId": .string(hex(e.m.requestID)),
            ]
        }
        return .reply(["shadows": .array(rows), "mismatches": .array(mismatches)])
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
