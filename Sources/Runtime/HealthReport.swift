// What health checks, ejection, retries and limits look like from outside, as rows built in one
// place: /metrics renders them (Admin/HealthMetrics.swift), so do the health columns of
// `show upstreams` and `show stats` (CommandSocket/ControlShow.swift); /readyz asks for its verdict.
import Config
import Proxy
import Routing

package enum HealthReport {
    /// One row per endpoint of every pool of the snapshot requests route on now.
    package struct EndpointRow {
        package var upstream: String
        package var color: String
        package var address: String
        package var id: Int
    }

    package static func rows(_ snapshot: Snapshot, registry: EndpointRegistry) -> [EndpointRow] {
        var rows: [EndpointRow] = []
        for u in snapshot.upstreams {
            let pools: [(String, Pool)]
            switch u.kind {
            case .pool(let p): pools = [("default", p)]
            case .blueGreen(let bg): pools = [("blue", bg.blue), ("green", bg.green)]
            }
            for (color, pool) in pools {
                for e in pool.endpoints {
                    rows.append(EndpointRow(upstream: u.name, color: color, address: registry.address(for: e.id) ?? e.address, id: e.id))
                }
            }
        }
        return rows
    }

    /// Per upstream: what retries, health and limits did, each counter summed over the workers.
    package struct ResilienceRow {
        package var upstream: String
        package var counts: [(counter: ResilienceCounter, value: UInt64)]
    }

    package static func resilience(_ server: ProxyServer) -> [ResilienceRow] {
        server.resilienceSlots.all.map { s in
            ResilienceRow(upstream: s.name, counts: ResilienceCounter.allCases.map { ($0, total(server, $0, slot: s.slot)) })
        }
    }

    static func total(_ server: ProxyServer, _ c: ResilienceCounter, slot: Int) -> UInt64 {
        server.resilienceStats.reduce(0) { $0 + $1.load(c, upstreamSlot: slot) }
    }

    // MARK: by endpoint address (the config's view)

    /// The health of an endpoint address as `show upstreams` and `show stats` print it.
    package static func health(_ state: RuntimeState, _ address: String) -> String {
        guard let server = state.server, let id = state.registry.existingID(for: address) else { return "healthy" }
        switch server.health.health(endpoint: id) {
        case .healthy: return "healthy"
        case .unhealthy: return "unhealthy"
        case .ejected: return "ejected \(Int((server.health.ejectionRemainingMs(endpoint: id) + 999) / 1000))s"
        }
    }

    /// Whether the endpoint takes requests now (its health; a pool that fails open sends to
    /// unhealthy endpoints when it has no healthy one).
    package static func takesRequests(_ state: RuntimeState, _ address: String, pool: Config.Pool, policy: UpstreamPolicy) -> Bool {
        guard let server = state.server else { return true }
        func available(_ a: String) -> Bool {
            guard let id = state.registry.existingID(for: a) else { return true }
            return server.health.isAvailable(endpoint: id)
        }
        if available(address) { return true }
        return policy.failOpen && !pool.endpoints.contains { !$0.draining && available($0.address.description) }
    }

    package static func ejections(_ state: RuntimeState, _ address: String) -> UInt64 {
        guard let server = state.server, let id = state.registry.existingID(for: address) else { return 0 }
        return server.health.ejections(endpoint: id)
    }

    // MARK: readiness

    /// Why the proxy is not ready: a routed upstream (with `affectsReadiness`) whose serving pool
    /// has no endpoint that takes requests. nil when every one has.
    package static func notReadyReason(_ server: ProxyServer) -> String? {
        let snapshot = server.snapshot
        var routed = Set<Int>()
        for r in snapshot.routes {
            switch r.target {
            case .upstream(let u): routed.insert(u)
            case .split(let s): for v in s.variants { routed.insert(v.upstream) }
            }
        }
        for u in routed.sorted() where u < snapshot.upstreams.count {
            let upstream = snapshot.upstreams[u]
            guard upstream.policy.affectsReadiness else { continue }
            let pool = upstream.pool(nil)
            let serving = pool.endpoints.filter { !$0.draining }
            if !serving.isEmpty && !serving.contains(where: { server.health.isAvailable(endpoint: $0.id) }) {
                return "upstream \(upstream.name) has no healthy endpoint"
            }
        }
        return nil
    }
}
