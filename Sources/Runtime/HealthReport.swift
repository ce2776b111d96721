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

    /// The ids the served snapshot gives endpoint `address` (as written in the config) of
    /// `upstream`'s pool `color`: one, or one per address a host name resolved to. Found through
    /// the snapshot, not by address in the registry, whose keys hold an endpoint's TLS policy
    /// too (the address lookup found no endpoint reached over TLS or by name, and showed it
    /// healthy whatever its checks said).
    package static func endpointIDs(_ state: RuntimeState, upstream: String, color: Color?, address: Address) -> [Int] {
        guard let server = state.server,
              let u = server.snapshot.upstreams.first(where: { $0.name == upstream }) else { return [] }
        let keys = Set(state.names.keys(for: address))
        return u.pool(color).endpoints.compactMap { e in
            state.registry.address(for: e.id).map(keys.contains) == true ? e.id : nil
        }
    }

    /// An endpoint's health as `show upstreams` and `show stats` print it, the same verdict
    /// `switchyard_endpoint_healthy` exposes, and why its newest health check failed (nil: it
    /// passed, or none runs). An endpoint with several addresses shows the worst of them.
    package static func health(_ state: RuntimeState, upstream: String, color: Color?, address: Address) -> (health: String, checkFailure: String?) {
        guard let server = state.server else { return ("healthy", nil) }
        var worst = "healthy"
        var failure: String?
        for id in endpointIDs(state, upstream: upstream, color: color, address: address) {
            failure = failure ?? server.health.checkFailure(endpoint: id)
            let h = health(server, endpoint: id)
            if h == "unhealthy" || (h != "healthy" && worst != "unhealthy") { worst = h }
        }
        return (worst, failure)
    }

    /// One endpoint id's health in words: healthy, unhealthy, or ejected with the seconds left.
    package static func health(_ server: ProxyServer, endpoint id: Int) -> String {
        switch server.health.health(endpoint: id) {
        case .healthy: return "healthy"
        case .unhealthy: return "unhealthy"
        case .ejected: return "ejected \(Int((server.health.ejectionRemainingMs(endpoint: id) + 999) / 1000))s"
        }
    }

    /// Whether the endpoint takes requests now (its health; a pool that fails open sends to
    /// unhealthy endpoints when it has no healthy one).
    package static func takesRequests(_ state: RuntimeState, upstream: String, color: Color?, address: Address,
                                      pool: Config.Pool, policy: UpstreamPolicy) -> Bool {
        guard let server = state.server else { return true }
        func available(_ a: Address) -> Bool {
            let ids = endpointIDs(state, upstream: upstream, color: color, address: a)
            return ids.isEmpty || ids.contains { server.health.isAvailable(endpoint: $0) }
        }
        if available(address) { return true }
        return policy.failOpen && !pool.endpoints.contains { !$0.draining && available($0.address) }
    }

    package static func ejections(_ state: RuntimeState, upstream: String, color: Color?, address: Address) -> UInt64 {
        guard let server = state.server else { return 0 }
        return endpointIDs(state, upstream: upstream, color: color, address: address).reduce(0) { $0 &+ server.health.ejections(endpoint: $1) }
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
