// The shadow comparison section of /metrics, rendered from ShadowReport's rows.
import Proxy
import Runtime

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
