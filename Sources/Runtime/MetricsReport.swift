// The labelled metrics merged over the workers, as rows: what /metrics writes in the Prometheus
// text format and `show stats` answers as JSON, so both show the same numbers.
import Config
import Proxy
import Routing
import Synchronization

/// Reloads applied and refused, whoever asked (SIGHUP or `ctl reload`).
public final class ReloadCounts: Sendable {
    let applied = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)

    public init() {}

    func count(ok: Bool) {
        if ok { applied.wrappingAdd(1, ordering: .relaxed) } else { refused.wrappingAdd(1, ordering: .relaxed) }
    }

    public var values: (applied: UInt64, refused: UInt64) {
        (applied.load(ordering: .relaxed), refused.load(ordering: .relaxed))
    }

    public var appliedCount: Int { Int(applied.load(ordering: .relaxed)) }
    public var refusedCount: Int { Int(refused.load(ordering: .relaxed)) }
}

package struct MetricsReport {
    package struct Outcome {
        package var route: String, variant: String, upstream: String
        package var code: String, source: String
        package var count: UInt64
        package var labels: String
    }

    /// A histogram: per-bucket counts (not cumulative; the last is +Inf) and the sum.
    package struct Histogram {
        package var labels: String
        package var values: [String]
        package var buckets: [UInt64]
        package var sumNs: UInt64
        package var count: UInt64 { buckets.reduce(0, &+) }

        package init(labels: String, values: [String], buckets: [UInt64], sumNs: UInt64) {
            self.labels = labels
            self.values = values
            self.buckets = buckets
            self.sumNs = sumNs
        }

        /// An estimate of quantile `q` in ms: the upper bound of the bucket it falls in.
        package func quantileMs(_ q: Double) -> Double? {
            let total = count
            guard total > 0 else { return nil }
            let rank = UInt64((Double(total) * q).rounded(.up))
            var seen: UInt64 = 0
            for (i, n) in buckets.enumerated() {
                seen += n
                if seen >= max(rank, 1) {
                    return i < LatencyBuckets.count ? Double(LatencyBuckets.boundsNs[i]) / 1e6 : .infinity
                }
            }
            return .infinity
        }
    }

    package struct Mirror {
        package var route: String, shadow: String, outcome: String
        package var count: UInt64
        package var labels: String
    }

    package struct Routed {
        package var route: String, variant: String
        package var count: UInt64
    }

    package var outcomes: [Outcome] = []
    /// By {route,variant}, over the upstreams a variant has had.
    package var requestDuration: [Histogram] = []
    /// By {upstream,color}.
    package var upstreamResponse: [Histogram] = []
    package var mirrors: [Mirror] = []
    package var routed: [Routed] = []
    /// By route: requests whose override or preview header was ignored as untrusted.
    package var untrustedSteering: [(route: String, count: UInt64)] = []

    package init(_ metrics: ProxyMetrics) {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        var durations: [[String]: Histogram] = [:]
        var routedByVariant: [[String]: UInt64] = [:]
        var untrustedByRoute: [String: UInt64] = [:]
        for (id, s) in metrics.series.routes.all() {
            let slots = metrics.totals(\.responses, id)
            for (slot, n) in slots.enumerated() where n > 0 {
                let code = classes[slot / 2], source = slot % 2 == 0 ? "upstream" : "proxy"
                outcomes.append(Outcome(route: s.values[0], variant: s.values[1], upstream: s.values[2], code: code,
                                        source: source, count: n,
                                        labels: s.labels + ",code=\"\(code)\",source=\"\(source)\""))
            }
            let key = Array(s.values.prefix(2))
            let h = metrics.totals(\.requestDuration, id)
            if h.prefix(LatencyBuckets.count + 1).contains(where: { $0 > 0 }) {
                var merged = durations[key] ?? Histogram(
                    labels: "route=\"\(SeriesTable.escape(key[0]))\",variant=\"\(SeriesTable.escape(key[1]))\"",
                    values: key, buckets: Array(repeating: 0, count: LatencyBuckets.count + 1), sumNs: 0)
                for i in 0...LatencyBuckets.count { merged.buckets[i] &+= h[i] }
                merged.sumNs &+= h[LatencyBuckets.sumOffset]
                durations[key] = merged
            }
            let r = metrics.total(\.routed, id)
            if r > 0 { routedByVariant[key, default: 0] &+= r }
            let u = metrics.total(\.routed, id, 1)
            if u > 0 { untrustedByRoute[key[0], default: 0] &+= u }
        }
        untrustedSteering = untrustedByRoute.map { ($0.key, $0.value) }.sorted { $0.route < $1.route }
        requestDuration = durations.values.sorted { $0.values.lexicographicallyPrecedes($1.values) }
        routed = routedByVariant.map { Routed(route: $0.key[0], variant: $0.key[1], count: $0.value) }
            .sorted { ($0.route, $0.variant) < ($1.route, $1.variant) }
        for (id, s) in metrics.series.pools.all() {
            let h = metrics.totals(\.upstreamResponse, id)
            guard h.prefix(LatencyBuckets.count + 1).contains(where: { $0 > 0 }) else { continue }
            upstreamResponse.append(Histogram(labels: s.labels, values: s.values,
                                              buckets: Array(h.prefix(LatencyBuckets.count + 1)), sumNs: h[LatencyBuckets.sumOffset]))
        }
        for (id, s) in metrics.series.mirrors.all() {
            let slots = metrics.totals(\.mirrors, id)
            for o in MirrorOutcome.allCases where slots[o.rawValue] > 0 {
                mirrors.append(Mirror(route: s.values[0], shadow: s.values[1], outcome: o.name, count: slots[o.rawValue],
                                      labels: s.labels + ",outcome=\"\(o.name)\""))
            }
        }
    }
}

extension Snapshot {
    /// The rollout state: each route's variants and weights (a route without a split is one
    /// variant, `default`, weight 100).
    package var routeWeights: [(route: String, variant: String, weight: Int)] {
        routes.flatMap { r -> [(route: String, variant: String, weight: Int)] in
            switch r.target {
            case .upstream: return [(r.name, MetricSeries.defaultVariant, 100)]
            case .split(let s): return s.variants.map { (r.name, $0.name, $0.weight) }
            }
        }
    }

    /// Each blue/green upstream's colors, 1 for the live one.
    package var liveColors: [(upstream: String, color: String, live: Int)] {
        upstreams.flatMap { u -> [(upstream: String, color: String, live: Int)] in
            guard case .blueGreen(let bg) = u.kind else { return [] }
            return [(u.name, "blue", bg.live == .blue ? 1 : 0), (u.name, "green", bg.live == .green ? 1 : 0)]
        }
    }
}

extension MetricsReport {
    /// One variant's cumulative counters, as a rollout's gates read them: requests, 5xx
    /// responses and the latency histogram's buckets.
    package func variantCounts(route: String, variant: String) -> VariantCounts {
        var c = VariantCounts(buckets: Array(repeating: 0, count: RolloutLatency.boundsSeconds.count + 1))
        for o in outcomes where o.route == route && o.variant == variant {
            c.requests &+= o.count
            if o.code == "5xx" { c.errors &+= o.count }
        }
        if let h = requestDuration.first(where: { $0.values == [route, variant] }) {
            for (i, n) in h.buckets.enumerated() where i < c.buckets.count { c.buckets[i] = n }
        }
        return c
    }
}
