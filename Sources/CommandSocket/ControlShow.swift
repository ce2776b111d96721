// The read-only commands: show routes, show upstreams, show state, show stats. Replies are flat
// lists of rows (one per route, variant, endpoint...) so `ctl` can print them as tables.
import Config
import Proxy
import Routing
import Runtime

enum ControlShow {
    static func routes(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        let state = c.state
        let config = state.config
        var routes: [ControlValue] = []
        var variants: [ControlValue] = []
        var mirrors: [ControlValue] = []
        for route in config.routes {
            var target = "split"
            if case .upstream(let name) = route.target { target = name }
            routes.append([
                "route": .string(route.name), "match": .string(describe(route.match)),
                "rewrite": ControlValue(route.rewrite.map(describe)), "target": .string(target),
                "upgrades": ControlValue(route.upgrades),
            ])
            if let split = route.split {
                let total = split.variants.reduce(0) { $0 + $1.weight }
                for v in split.variants {
                    var value: ControlValue = [
                        "route": .string(route.name), "variant": .string(v.name), "upstream": .string(v.upstream),
                        "weight": .int(v.weight),
                        "percent": .double(total > 0 ? (Double(v.weight) * 100 / Double(total) * 10).rounded() / 10 : 0),
                        "override": .bool(state.overrides.weights[route.name]?[v.name] != nil),
                    ]
                    if v.idle { value.set("color", "idle") }
                    variants.append(value)
                }
            }
            for m in route.mirrors {
                var value: ControlValue = [
                    "route": .string(route.name), "upstream": .string(m.upstream), "percent": .double(m.percent),
                    "maxBodyBytes": .int(m.maxBodyBytes), "stripHeaders": ControlValue(m.stripHeaders),
                    "override": .bool(state.overrides.mirrors[route.name]?[m.upstream] != nil),
                ]
                if m.idle { value.set("color", "idle") }
                mirrors.append(value)
            }
        }
        return .reply([
            "version": ControlValue(state.version), "routes": .array(routes), "variants": .array(variants),
            "mirrors": .array(mirrors),
        ])
    }

    static func upstreams(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        let state = c.state
        var upstreams: [ControlValue] = []
        var endpoints: [ControlValue] = []
        for upstream in state.config.upstreams {
            let pools: [(color: Color?, pool: Config.Pool, live: Bool)]
            switch upstream.kind {
            case .pool(let pool):
                var row: ControlValue = ["upstream": .string(upstream.name), "kind": "pool", "live": nil]
                if !upstream.setHeaders.isEmpty { row.set("setHeaders", ControlValue(setHeaders(upstream))) }
                upstreams.append(row)
                pools = [(nil, pool, true)]
            case .blueGreen(let bg):
                var row: ControlValue = [
                    "upstream": .string(upstream.name), "kind": "blue/green", "live": .string(bg.live.name),
                    "override": .bool(state.overrides.live[upstream.name] != nil),
                    "previewHeader": ControlValue(bg.previewHeader),
                ]
                if let w = bg.warmup { row.set("warmup", .string("GET \(w.path) x\(w.requests), \(w.timeoutMs) ms timeout")) }
                let set = setHeaders(upstream)
                if !set.isEmpty { row.set("setHeaders", ControlValue(set)) }
                if bg.drainTunnelsMs > 0 { row.set("drainTunnelsMs", .int(bg.drainTunnelsMs)) }
                if let server = state.server {
                    let counts = [Color.blue, .green].map { server.metrics.longLived(upstream: upstream.name, color: $0) }
                    row.set("tunnels", ["blue": ControlValue(counts[0].tunnels), "green": ControlValue(counts[1].tunnels)])
                    row.set("streams", ["blue": ControlValue(counts[0].streams), "green": ControlValue(counts[1].streams)])
                }
                upstreams.append(row)
                pools = [(.blue, bg.blue, bg.live == .blue), (.green, bg.green, bg.live == .green)]
            }
            for (color, pool, live) in pools {
                let key = PoolKey(upstream: upstream.name, color: color).description
                let changes = state.overrides.endpoints[key]
                // Sets: a pool may have thousands of runtime-added endpoints.
                let added = Set(changes?.added ?? [])
                let draining = Set(changes?.draining ?? [])
                for e in pool.endpoints {
                    let address = e.address.description
                    var override: String?
                    if added.contains(address) { override = "added" }
                    if draining.contains(address) { override = (override.map { $0 + ", " } ?? "") + "draining" }
                    // live: takes new requests now (its color serves, not draining, healthy).
                    let serving = live && !e.draining && HealthReport.takesRequests(state, upstream: upstream.name, color: color,
                                                                                      address: e.address, pool: pool, policy: upstream.policy)
                    let health = HealthReport.health(state, upstream: upstream.name, color: color, address: e.address)
                    var row: ControlValue = [
                        "upstream": .string(upstream.name), "color": ControlValue(color?.name),
                        "address": .string(address), "weight": .int(e.weight), "live": .bool(serving),
                        "health": .string(health.health),
                        "draining": .bool(e.draining), "inFlight": inFlight(state, e.address),
                        "override": ControlValue(override),
                    ]
                    if let why = health.checkFailure { row.set("checkFailure", .string(why)) }
                    if e.address.hostName != nil {
                        row.set("resolved", ControlValue((state.names.addresses[e.address.written] ?? []).map(\.description)))
                    }
                    endpoints.append(row)
                }
            }
        }
        return .reply(["version": ControlValue(state.version), "upstreams": .array(upstreams), "endpoints": .array(endpoints)])
    }

    /// The fields the upstream's pools set, each with where its value comes from, never the
    /// value: the upstream's own, then each color's own ("green: x-functions-key from file ...").
    private static func setHeaders(_ upstream: Config.Upstream) -> [String] {
        var lines = upstream.setHeaders.map(\.description)
        if let bg = upstream.blueGreen {
            for color in [Color.blue, .green] {
                lines += (bg.settings(color).setHeaders ?? []).map { "\(color.name): \($0)" }
            }
        }
        return lines
    }

    static func state(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        let state = c.state
        var reply: ControlValue = [
            "version": ControlValue(state.version),
            "configFile": .string(state.source.name),
            "stateFile": ControlValue(state.stateFile?.path),
        ]
        if let failure = state.saveFailure { reply.set("stateFileError", .string(failure)) }
        reply.set("overrides", .array(state.describe(state.overrides).map { e in
            ["name": .string(e.owner), "setting": .string(e.setting), "value": e.value, "config": e.config]
        }))
        if let t = c.session.transaction {
            reply.set("transaction", ["staged": ControlValue(t.changes.map(\.summary))])
        }
        return .reply(reply)
    }

    /// `show fleet`: one row per live instance, the store's state as this instance sees it.
    static func fleet(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        guard let store = c.state.sharedStore else { throw ControlError("show fleet: not in fleet mode (the config has no \"fleet\" section)") }
        return .reply(store.report(listingInstances: true).value)
    }

    static func stats(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        let state = c.state
        guard let server = state.server else { throw ControlError("show stats: the proxy is not running yet") }
        let totals = Counter.allCases.map { ControlValue.Member(String(describing: $0), ControlValue(server.total($0))) }
        let report = MetricsReport(server.metrics)
        let requests = report.routed.map { r -> ControlValue in
            ["route": .string(r.route), "variant": .string(r.variant), "requests": ControlValue(r.count)]
        }
        let outcomes = report.outcomes.map { o -> ControlValue in
            ["route": .string(o.route), "variant": .string(o.variant), "upstream": .string(o.upstream), "code": .string(o.code),
             "source": .string(o.source), "requests": ControlValue(o.count)]
        }
        func latency(_ h: MetricsReport.Histogram, _ names: [String]) -> ControlValue {
            var row: ControlValue = [:]
            for (n, v) in zip(names, h.values) { row.set(n, .string(v)) }
            let count = h.count
            row.set("count", ControlValue(count))
            row.set("meanMs", .double(count > 0 ? (Double(h.sumNs) / Double(count) / 1e3).rounded() / 1e3 : 0))
            for (name, q) in [("p50Ms", 0.5), ("p90Ms", 0.9), ("p99Ms", 0.99)] {
                let v = h.quantileMs(q)
                row.set(name, v.map { $0.isFinite ? ControlValue.double($0) : ControlValue.string(">30000") } ?? .null)
            }
            return row
        }
        let mirrors = report.mirrors.map { m -> ControlValue in
            ["route": .string(m.route), "shadow": .string(m.shadow), "outcome": .string(m.outcome), "copies": ControlValue(m.count)]
        }
        let reloads = state.reloads.values
        var endpoints: [ControlValue] = []
        for upstream in state.config.upstreams {
            let pools: [(Color?, Config.Pool)]
            switch upstream.kind {
            case .pool(let pool): pools = [(nil, pool)]
            case .blueGreen(let bg): pools = [(.blue, bg.blue), (.green, bg.green)]
            }
            for (color, pool) in pools {
                for e in pool.endpoints {
                    endpoints.append([
                        "upstream": .string(upstream.name), "color": ControlValue(color?.name),
                        "address": .string(e.address.description), "draining": .bool(e.draining),
                        "inFlight": inFlight(state, e.address),
                        "health": .string(HealthReport.health(state, upstream: upstream.name, color: color, address: e.address).health),
                        "ejections": ControlValue(HealthReport.ejections(state, upstream: upstream.name, color: color, address: e.address)),
                    ])
                }
            }
        }
        return .reply([
            "version": ControlValue(state.version), "totals": .object(totals), "requests": .array(requests),
            "untrustedSteering": .array(report.untrustedSteering.map { ["route": .string($0.route), "requests": ControlValue($0.count)] }),
            "endpoints": .array(endpoints), "upstreams": .array(resilienceRows(state)), "outcomes": .array(outcomes),
            // Latency from each bucket's upper bound (the same buckets /metrics exposes).
            "latency": .array(report.requestDuration.map { latency($0, ["route", "variant"]) }),
            "upstreamLatency": .array(report.upstreamResponse.map { latency($0, ["upstream", "color"]) }),
            "mirrors": .array(mirrors),
            "reloads": ["applied": ControlValue(reloads.applied), "refused": ControlValue(reloads.refused)],
        ])
    }

    /// Per upstream: what retries, health and limits did (the same rows as /metrics).
    private static func resilienceRows(_ state: RuntimeState) -> [ControlValue] {
        guard let server = state.server else { return [] }
        return HealthReport.resilience(server).map { row in
            .object([ControlValue.Member("upstream", .string(row.upstream))] + row.counts.map {
                ControlValue.Member(String(describing: $0.counter), ControlValue($0.value))
            })
        }
    }

    private static func inFlight(_ state: RuntimeState, _ address: Address) -> ControlValue {
        guard let server = state.server else { return 0 }
        return ControlValue(state.inFlight(address, server: server))
    }

    static func describe(_ match: Config.Match) -> String {
        var parts: [String] = []
        if !match.hosts.isEmpty { parts.append("host=" + match.hosts.joined(separator: ",")) }
        if let prefix = match.pathPrefix { parts.append("path=\(prefix)*") }
        if !match.methods.isEmpty { parts.append("method=" + match.methods.joined(separator: ",")) }
        for h in match.headers { parts.append("\(h.name)=\(h.value ?? "*")") }
        return parts.isEmpty ? "*" : parts.joined(separator: " ")
    }

    static func describe(_ rewrite: Config.Rewrite) -> String {
        switch rewrite {
        case .stripPrefix(let p): return "strip \(p)"
        case .prefix(let p): return "prefix \(p)"
        }
    }
}

extension RuntimeState.CommitResult {
    /// In fleet mode, the store's revision of the change, and whether this instance already
    /// serves it (it answers once it does, or after 5 s).
    func addFleet(to reply: inout ControlValue) {
        guard let revision else { return }
        reply.set("revision", .int(Int(revision)))
        if !appliedHere { reply.set("appliedHere", .bool(false)) }
    }
}
