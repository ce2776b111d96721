// Every worker's labelled slots and the label sets they share, merged when read (/metrics,
// `show stats`, releasing endpoint ids): the request path never sees this type.
import Routing

public final class ProxyMetrics: Sendable {
    public let series = MetricSeries()
    /// By worker index.
    public let workers: [WorkerMetrics]

    init(workerCount: Int) {
        let series = self.series
        workers = (0..<workerCount).map { _ in WorkerMetrics(series: series) }
    }

    /// The sum of one slot over every worker.
    public func total(_ table: KeyPath<WorkerMetrics, SlotTable>, _ id: Int, _ offset: Int = 0) -> UInt64 {
        workers.reduce(0) { $0 &+ $1[keyPath: table].load(id, offset) }
    }

    /// All `stride` slots of a series, summed over the workers.
    public func totals(_ table: KeyPath<WorkerMetrics, SlotTable>, _ id: Int) -> [UInt64] {
        guard let first = workers.first else { return [] }
        var out = [UInt64](repeating: 0, count: first[keyPath: table].stride)
        for w in workers {
            let t = w[keyPath: table]
            for i in out.indices { out[i] &+= t.load(id, i) }
        }
        return out
    }

    /// Exchanges in flight on each endpoint id, over every pool and worker.
    public func inFlightByEndpoint() -> [Int: UInt64] {
        var out: [Int: UInt64] = [:]
        for (id, s) in series.endpoints.all() where s.endpointID >= 0 {
            out[s.endpointID, default: 0] &+= total(\.inFlight, id)
        }
        return out
    }

    /// Exchanges in flight on one endpoint id, over every pool and worker.
    public func inFlight(endpoint id: Int) -> UInt64 {
        var n: UInt64 = 0
        for (sid, s) in series.endpoints.all() where s.endpointID == id { n &+= total(\.inFlight, sid) }
        return n
    }

    /// Open tunnels and responses being relayed that started on one pool (`color` nil for a
    /// plain pool), over every worker.
    public func longLived(upstream: String, color: Color?) -> (tunnels: UInt64, streams: UInt64) {
        guard let id = series.pools.existingID([upstream, color?.name ?? MetricSeries.noColor]) else { return (0, 0) }
        return (total(\.longLived, id, 0), total(\.longLived, id, 1))
    }

    /// Every pool of `snapshot` with its labels and its open tunnels and streaming responses.
    public func longLivedRows(_ snapshot: Snapshot) -> [(labels: String, tunnels: UInt64, streams: UInt64)] {
        snapshot.upstreams.flatMap { u in
            u.colorPools.compactMap { color, _ in
                // Assigned here too: a loop may not have adopted the snapshot yet.
                let id = series.pools.id([u.name, color?.name ?? MetricSeries.noColor])
                guard let s = series.pools.series(id) else { return nil }
                return (s.labels, total(\.longLived, id, 0), total(\.longLived, id, 1))
            }
        }
    }

    /// One endpoint of one pool of the snapshot, with its series.
    public struct EndpointRow: Sendable {
        public var upstream: String
        /// nil for a plain pool.
        public var color: Color?
        public var endpoint: Endpoint
        public var seriesID: Int
        public var labels: String
    }

    /// Every endpoint of every pool of `snapshot`, each pool's own series (a removed endpoint's
    /// series goes with it, so churning pools leave no stale series behind).
    public func endpointRows(_ snapshot: Snapshot) -> [EndpointRow] {
        var rows: [EndpointRow] = []
        for u in snapshot.upstreams {
            for (color, pool) in u.colorPools {
                for e in pool.endpoints {
                    let values = [u.name, color?.name ?? MetricSeries.noColor, e.address]
                    // Assigned here too: a loop may not have adopted the snapshot yet.
                    let id = series.endpoints.id(values, endpointID: e.id)
                    guard let s = series.endpoints.series(id) else { continue }
                    rows.append(EndpointRow(upstream: u.name, color: color, endpoint: e, seriesID: id, labels: s.labels))
                }
            }
        }
        return rows
    }

    /// Releases the endpoint series `snapshot` no longer has, once nothing is in flight on them;
    /// false when some had exchanges in flight and stay (a later call releases them).
    @discardableResult
    public func releaseEndpointSeries(keeping snapshot: Snapshot) -> Bool {
        var current = Set<String>()
        for u in snapshot.upstreams {
            for (color, pool) in u.colorPools {
                for e in pool.endpoints { current.insert("\(u.name)\u{0}\(color?.name ?? MetricSeries.noColor)\u{0}\(e.address)") }
            }
        }
        var left = false
        series.endpoints.release { id, s in
            guard !current.contains(s.values.joined(separator: "\u{0}")) else { return false }
            if total(\.inFlight, id) == 0 { return true }
            left = true
            return false
        }
        return !left
    }
}

extension Upstream {
    /// Its pools with their colors: one uncolored pool, or blue then green.
    public var colorPools: [(color: Color?, pool: Pool)] {
        switch kind {
        case .pool(let p): return [(nil, p)]
        case .blueGreen(let bg): return [(.blue, bg.blue), (.green, bg.green)]
        }
    }
}
