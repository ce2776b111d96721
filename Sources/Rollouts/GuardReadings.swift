// What a bake reads: cumulative counters of an upstream or a variant, summed over the workers
// when a timer fires (never on the request path), and their differences since the commit.
import Config
import Proxy
import Routing
import Runtime

/// What a bake reads: the responses of an upstream (every route and variant sending to it; the
/// latency of its pool `color`), or of one variant of a route.
enum GuardWatch: Sendable, Equatable {
    case upstream(String, color: Color?)
    case variant(route: String, variant: String)

    var name: String {
        switch self {
        case .upstream(let u, let c): return "upstream \(c.map { "\(u)/\($0.name)" } ?? u)"
        case .variant(let r, let v): return "variant \(r)/\(v)"
        }
    }

    /// The upstreams and variants that `facets` send more traffic to.
    static func affected(by facets: [GuardFacet], after config: Config) -> [GuardWatch] {
        var out: [GuardWatch] = []
        func add(_ w: GuardWatch) { if !out.contains(w) { out.append(w) } }
        for f in facets {
            switch f.kind {
            case .live(let u): add(.upstream(u, color: Color(name: f.after)))
            case .endpoint(let p, _): add(.upstream(p.upstream, color: p.color))
            case .weight(let r, let v) where (Int(f.after) ?? 0) > (Int(f.before) ?? 0): add(.variant(route: r, variant: v))
            case .weight, .mirror: break
            }
        }
        // Weights only went down: the variants still weighted take the traffic.
        for f in facets {
            guard case .weight(let r, _) = f.kind, !out.contains(where: { if case .variant(r, _) = $0 { true } else { false } }) else { continue }
            for v in config[route: r]?.split?.variants ?? [] where v.weight > 0 { add(.variant(route: r, variant: v.name)) }
        }
        return out
    }

    /// Cumulative responses, 5xx (from the upstream or the proxy) and latency buckets.
    func sample(_ metrics: ProxyMetrics) -> GuardSample {
        var s = GuardSample()
        var latencyFromRoutes = false
        for (id, series) in metrics.series.routes.all() {
            let v = series.values
            switch self {
            case .upstream(let u, _): guard v[2] == u else { continue }
            case .variant(let r, let name): guard v[0] == r && v[1] == name else { continue }
                latencyFromRoutes = true
            }
            let slots = metrics.totals(\.responses, id)
            s.total &+= slots.reduce(0, &+)
            s.errors &+= slots[8] &+ slots[9]
            if latencyFromRoutes { s.add(metrics.totals(\.requestDuration, id)) }
        }
        if case .upstream(let u, let color) = self,
           let id = metrics.series.pools.existingID([u, color?.name ?? MetricSeries.noColor]) {
            s.add(metrics.totals(\.upstreamResponse, id))
        }
        return s
    }
}

/// What `--revert-if-p99-ratio` compares a watch's p99 with: for an upstream, the latency history
/// of the pool that served before the change (the previous color after a flip, the pool itself
/// after an endpoint edit) up to the commit; for a variant, the route's other weighted variants
/// over the same window.
enum GuardBaseline: Sendable {
    case history(name: String, GuardSample)
    case window(name: String, [GuardWatch], start: [GuardSample])

    var name: String {
        switch self {
        case .history(let name, _), .window(let name, _, _): return name
        }
    }

    /// The baseline of `watch`, read with `sample` (at the commit).
    static func of(_ watch: GuardWatch, facets: [GuardFacet], after config: Config, watches: [GuardWatch],
                   sample: (GuardWatch) -> GuardSample) -> GuardBaseline? {
        switch watch {
        case .upstream(let u, let color):
            var previous = color
            for f in facets { if case .live(u) = f.kind { previous = Color(name: f.before) } }
            let pool = GuardWatch.upstream(u, color: previous)
            return .history(name: pool.name + " before the change", sample(pool))
        case .variant(let r, let v):
            let others = (config[route: r]?.split?.variants ?? []).filter { $0.name != v && $0.weight > 0 }
                .map { GuardWatch.variant(route: r, variant: $0.name) }.filter { !watches.contains($0) }
            guard !others.isEmpty else { return nil }
            return .window(name: others.map(\.name).joined(separator: " + "), others, start: others.map(sample))
        }
    }

    /// The latency to compare with now, each watch read with `sample`.
    func current(_ sample: (GuardWatch) -> GuardSample) -> GuardSample {
        switch self {
        case .history(_, let s): return s
        case .window(_, let watches, let start):
            var total = GuardSample()
            for (i, w) in watches.enumerated() {
                let d = sample(w).minus(start[i])
                total.total &+= d.total
                total.errors &+= d.errors
                total.add(d.buckets)
            }
            return total
        }
    }
}

struct GuardSample: Sendable {
    var total: UInt64 = 0
    var errors: UInt64 = 0
    var buckets = [UInt64](repeating: 0, count: LatencyBuckets.count + 1)

    mutating func add(_ histogram: [UInt64]) {
        for i in buckets.indices where i < histogram.count { buckets[i] &+= histogram[i] }
    }

    /// Since `start` (counters only grow while their series lives).
    func minus(_ start: GuardSample) -> GuardSample {
        var d = GuardSample()
        d.total = total &- min(start.total, total)
        d.errors = errors &- min(start.errors, errors)
        for i in buckets.indices { d.buckets[i] = buckets[i] &- min(start.buckets[i], buckets[i]) }
        return d
    }

    var latencyCount: UInt64 { buckets.reduce(0, &+) }
    var errorRate: Double { total == 0 ? 0 : Double(errors) / Double(total) }
    var p99Ms: Double? {
        MetricsReport.Histogram(labels: "", values: [], buckets: buckets, sumNs: 0).quantileMs(0.99)
    }
}
