// What health checks, ejection, retries and limits look like from outside: the /metrics section
// (per endpoint labelled {upstream,color,endpoint}; per upstream {upstream}), the health
// columns of `show upstreams` and `show stats`, and the /readyz verdict on routed upstreams.
import Proxy
import Routing

struct HealthMetrics {
    let server: ProxyServer
    let registry: EndpointRegistry

    /// One row per endpoint of every pool of the snapshot requests route on now.
    struct EndpointRow {
        var upstream: String
        var color: String
        var address: String
        var id: Int
    }

    static func rows(_ snapshot: Snapshot, registry: EndpointRegistry) -> [EndpointRow] {
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

    /// The section appended to /metrics.
    func text() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let rows = Self.rows(server.snapshot, registry: registry)
        let health = server.health
        func labels(_ r: EndpointRow) -> String {
            "upstream=\"\(escape(r.upstream))\",color=\"\(r.color)\",endpoint=\"\(escape(r.address))\""
        }
        family("switchyard_endpoint_healthy", "gauge", "1 when the endpoint takes requests: not failing its health check, not ejected.")
        for r in rows { out += "switchyard_endpoint_healthy{\(labels(r))} \(health.isAvailable(endpoint: r.id) ? 1 : 0)\n" }
        family("switchyard_endpoint_ejected", "gauge", "1 while the endpoint is ejected for consecutive failures.")
        for r in rows { out += "switchyard_endpoint_ejected{\(labels(r))} \(health.health(endpoint: r.id) == .ejected ? 1 : 0)\n" }
        family("switchyard_endpoint_ejection_seconds", "gauge", "Length of the endpoint's latest ejection (doubles while it keeps failing).")
        for r in rows {
            out += "switchyard_endpoint_ejection_seconds{\(labels(r))} \(Double(health.lastEjectionMs(endpoint: r.id)) / 1000)\n"
        }
        family("switchyard_endpoint_health_transitions_total", "counter", "Health check verdict changes (healthy to unhealthy and back).")
        for r in rows { out += "switchyard_endpoint_health_transitions_total{\(labels(r))} \(health.transitions(endpoint: r.id))\n" }
        family("switchyard_endpoint_health_checks_total", "counter", "Active health checks run, by result.")
        for r in rows {
            out += "switchyard_endpoint_health_checks_total{\(labels(r)),result=\"pass\"} \(health.checks(endpoint: r.id, passed: true))\n"
            out += "switchyard_endpoint_health_checks_total{\(labels(r)),result=\"fail\"} \(health.checks(endpoint: r.id, passed: false))\n"
        }
        family("switchyard_endpoint_ejections_total", "counter", "Ejections for consecutive failures (outlierDetection).")
        for r in rows { out += "switchyard_endpoint_ejections_total{\(labels(r))} \(health.ejections(endpoint: r.id))\n" }

        let slots = server.resilienceSlots.all
        for c in ResilienceCounter.allCases {
            family(c.metricName, "counter", c.help)
            for s in slots {
                out += "\(c.metricName){upstream=\"\(escape(s.name))\"} \(Self.total(server, c, slot: s.slot))\n"
            }
        }
        return out
    }

    static func total(_ server: ProxyServer, _ c: ResilienceCounter, slot: Int) -> UInt64 {
        server.resilienceStats.reduce(0) { $0 + $1.load(c, upstreamSlot: slot) }
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    // MARK: readiness

    /// Why the proxy is not ready: a routed upstream (with `affectsReadiness`) whose serving pool
    /// has no endpoint that takes requests. nil when every one has.
    static func notReadyReason(_ server: ProxyServer) -> String? {
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

extension ControlShow {
    /// The health of an endpoint address as `show upstreams` and `show stats` print it.
    static func health(_ state: RuntimeState, _ address: String) -> String {
        guard let server = state.server, let id = state.registry.existingID(for: address) else { return "healthy" }
        switch server.health.health(endpoint: id) {
        case .healthy: return "healthy"
        case .unhealthy: return "unhealthy"
        case .ejected: return "ejected \(Int((server.health.ejectionRemainingMs(endpoint: id) + 999) / 1000))s"
        }
    }

    /// Whether the endpoint takes requests now (its health; a pool that fails open sends to
    /// unhealthy endpoints when it has no healthy one).
    static func takesRequests(_ state: RuntimeState, _ address: String, pool: Config.Pool, policy: UpstreamPolicy) -> Bool {
        guard let server = state.server else { return true }
        func available(_ a: String) -> Bool {
            guard let id = state.registry.existingID(for: a) else { return true }
            return server.health.isAvailable(endpoint: id)
        }
        if available(address) { return true }
        return policy.failOpen && !pool.endpoints.contains { !$0.draining && available($0.address.description) }
    }

    static func ejections(_ state: RuntimeState, _ address: String) -> ControlValue {
        guard let server = state.server, let id = state.registry.existingID(for: address) else { return 0 }
        return ControlValue(server.health.ejections(endpoint: id))
    }

    /// Per upstream: what retries, health and limits did (the same numbers as /metrics).
    static func resilienceRows(_ state: RuntimeState) -> [ControlValue] {
        guard let server = state.server else { return [] }
        return server.resilienceSlots.all.map { s in
            .object([ControlValue.Member("upstream", .string(s.name))] + ResilienceCounter.allCases.map {
                ControlValue.Member(String(describing: $0), ControlValue(HealthMetrics.total(server, $0, slot: s.slot)))
            })
        }
    }
}
