// The commands that change what is served (flip, set live/weights/mirror, endpoint, reset): each
// validates against the config it would change and returns one RuntimeChange and its reply.
import Config
import Proxy
import Routing
import Runtime

enum ControlChanges {
    static func flip(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let (args, flags) = try c.split(flags: ["--no-warmup"])
        guard args.count == 1 else { throw c.usageError(args.isEmpty ? "flip: name the upstream" : "flip: one upstream at a time") }
        let (name, bg) = try c.blueGreen(args[0])
        return try switchLive(c, name, bg, to: bg.live.other, warm: !flags.contains("--no-warmup"))
    }

    static func setLive(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let (args, flags) = try c.split(flags: ["--no-warmup"])
        guard args.count == 2 else { throw c.usageError("set live: expected UPSTREAM and a color") }
        let (name, bg) = try c.blueGreen(args[0])
        guard let color = Color(name: args[1]) else {
            throw ControlError("set live: color must be blue or green, got \"\(args[1])\"" + didYouMean(args[1], among: ["blue", "green"]))
        }
        return try switchLive(c, name, bg, to: color, warm: !flags.contains("--no-warmup"))
    }

    /// Warms the color about to go live (when it is idle now and warm-up is configured), then
    /// returns the change; a failed warm-up changes nothing.
    private static func switchLive(_ c: CommandContext, _ name: String, _ bg: Config.BlueGreen, to color: Color,
                                   warm: Bool) throws(ControlError) -> CommandOutcome {
        var value: ControlValue = ["upstream": .string(name), "live": .string(color.name), "previous": .string(bg.live.name)]
        if color == bg.live { value.set("unchanged", true) }
        if color != bg.live, let warmup = bg.warmup {
            if warm {
                let endpoints = bg[color].endpoints.filter { !$0.draining }.map(\.address)
                let u = c.config[upstream: name]
                let key = UpstreamSecurity.key(upstream: name, color: color.name)
                let tls = c.state.security.pools[key]
                let to = Warmup.targets(endpoints, hostHeader: u?.hostHeader(color), setHeaders: u?.setHeaders(color) ?? [],
                                        names: c.state.names, tls: tls, bearer: c.state.security.bearer[key],
                                        signing: c.state.security.signing[key],
                                        tlsName: { u?.sniName(color, endpointHost: $0) ?? $0.numericHost ?? $0.host })
                return .afterWarmup(PendingWarmup(upstream: name, color: color, previous: bg.live, warmup: warmup,
                                                  targets: to.targets, labels: to.labels, failure: to.failure, value: value))
            } else {
                value.set("warmup", "skipped")
            }
        }
        return .change(.live(upstream: name, color: color), value)
    }

    static func setWeights(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        guard c.args.count >= 2 else {
            throw c.usageError(c.args.isEmpty ? "set weights: name the route and its weights" : "set weights: give at least one VARIANT=W")
        }
        let route = try c.route(c.args[0])
        guard let split = route.split else {
            throw ControlError("route \"\(route.name)\" sends to one upstream and has no variants to weigh")
        }
        var weights = split.variants.map { (name: $0.name, weight: $0.weight) }
        var changed: [RuntimeChange.VariantWeight] = []
        for pair in c.args.dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw c.usageError("set weights: expected VARIANT=WEIGHT, got \"\(pair)\"")
            }
            let variant = String(parts[0])
            guard let index = weights.firstIndex(where: { $0.name == variant }) else {
                throw ControlError("route \"\(route.name)\" has no variant \"\(variant)\""
                    + didYouMean(variant, among: weights.map(\.name)) + "; its variants: "
                    + weights.map(\.name).joined(separator: ", "))
            }
            guard let weight = Int(parts[1]), (0...ConfigParser.maxWeight).contains(weight) else {
                throw ControlError("weight of \"\(variant)\" must be a whole number from 0 to \(ConfigParser.maxWeight), got \"\(parts[1])\"")
            }
            if changed.contains(where: { $0.variant == variant }) {
                throw ControlError("set weights: variant \"\(variant)\" is named twice")
            }
            weights[index].weight = weight
            changed.append(RuntimeChange.VariantWeight(variant: variant, weight: weight))
        }
        if weights.allSatisfy({ $0.weight == 0 }) {
            throw ControlError("the weights of route \"\(route.name)\" would all be 0; at least one variant needs a weight above 0")
        }
        return .change(.weights(route: route.name, weights: changed), [
            "route": .string(route.name),
            "weights": .object(weights.map { .init($0.name, .int($0.weight)) }),
            "previous": .object(split.variants.map { .init($0.name, .int($0.weight)) }),
        ])
    }

    static func setMirror(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(3)
        let route = try c.route(args[0])
        let upstream = try c.upstream(args[1])
        let text = args[2].hasSuffix("%") ? String(args[2].dropLast()) : args[2]
        guard let percent = Double(text), percent >= 0, percent <= 100 else {
            throw ControlError("set mirror: PERCENT must be a number from 0 to 100 (0 removes the mirror), got \"\(args[2])\"")
        }
        let previous = route.mirrorIndex(upstream: upstream.name).map { route.mirrors[$0].percent }
        if percent == 0 && previous == nil {
            throw ControlError("route \"\(route.name)\" has no mirror to \"\(upstream.name)\" to remove"
                + (route.mirrors.isEmpty ? "" : "; its mirrors: " + route.mirrors.map(\.upstream).joined(separator: ", ")))
        }
        if previous == nil && route.mirrors.count >= ConfigParser.maxMirrors {
            throw ControlError("route \"\(route.name)\" already has \(ConfigParser.maxMirrors) mirrors")
        }
        var value: ControlValue = [
            "route": .string(route.name), "upstream": .string(upstream.name), "percent": .double(percent),
            "previous": .double(previous ?? 0),
        ]
        if percent == 0 { value.set("removed", true) }
        return .change(.mirror(route: route.name, upstream: upstream.name, percent: percent), value)
    }

    static func endpoint(_ action: EndpointAction, _ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(2)
        guard let key = PoolKey(parsing: args[0]) else {
            throw ControlError("\"\(args[0])\": the color after \"/\" must be blue or green")
        }
        let upstream = try c.upstream(key.upstream)
        guard let pool = upstream.pool(key.color) else {
            if key.color == nil {
                throw ControlError("upstream \"\(upstream.name)\" is blue/green: name a color, e.g. \(upstream.name)/blue or \(upstream.name)/green")
            }
            throw ControlError("upstream \"\(upstream.name)\" has one pool, not colors: use \"\(upstream.name)\"")
        }
        let address: Address
        do throws(AddressError) { address = try Address(endpoint: args[1]) } catch {
            throw ControlError("endpoint \(action.rawValue): \(error.reason)")
        }
        let index = pool.endpointIndex(address: address.description)
        let serving = pool.servingCount
        let live = upstream.blueGreen.map { $0.live == key.color } ?? true
        var value: ControlValue = [
            "upstream": .string(upstream.name), "color": ControlValue(key.color?.name),
            "endpoint": .string(address.description), "action": .string(action.rawValue),
        ]
        func missing() -> ControlError {
            let known = pool.endpoints.map(\.address.description)
            return ControlError("no endpoint \(address) in \(key)" + didYouMean(address.description, among: known)
                + "; its endpoints: " + known.joined(separator: ", "))
        }
        switch action {
        case .add:
            if let index {
                guard pool.endpoints[index].draining else { throw ControlError("\(address) is already in \(key)") }
                value.set("resumed", true)
            }
        case .remove:
            guard let index else { throw missing() }
            if pool.endpoints.count == 1 {
                throw ControlError("\(address) is the last endpoint of \(key); add another before removing it")
            }
            if live && serving == 1 && !pool.endpoints[index].draining {
                throw ControlError("\(address) is the last serving endpoint of \(key), which is live; add or resume another first")
            }
        case .drain:
            guard let index else { throw missing() }
            if live && serving == 1 && !pool.endpoints[index].draining {
                throw ControlError("\(address) is the last serving endpoint of \(key), which is live; add or resume another first")
            }
        }
        if action != .add, let server = c.state.server {
            value.set("inFlight", ControlValue(c.state.inFlight(address, server: server)))
        }
        return .change(.endpoint(action, pool: key, address: address.description), value)
    }

    static func reset(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(1)
        let name = args[0]
        let names = c.config.routes.map(\.name) + c.config.upstreams.map(\.name)
        guard names.contains(name) || c.state.overrides.touches(name) else {
            throw ControlError("no route or upstream \"\(name)\"" + didYouMean(name, among: names))
        }
        let dropped = c.state.describe(c.state.overrides).filter { $0.owner == name }.map(\.summary)
        return .change(.reset(name: name), ["reset": .string(name), "dropped": ControlValue(dropped)])
    }
}

// MARK: - Names and arguments

extension CommandContext {
    /// Splits `--flags` (only those in `allowed`) from the other arguments.
    func split(flags allowed: Set<String>) throws(ControlError) -> (args: [String], flags: Set<String>) {
        var args: [String] = []
        var flags = Set<String>()
        for a in self.args {
            if a.hasPrefix("--") {
                guard allowed.contains(a) else {
                    throw usageError("\(command.name): unknown option \"\(a)\"" + didYouMean(a, among: allowed.sorted()))
                }
                flags.insert(a)
            } else {
                args.append(a)
            }
        }
        return (args, flags)
    }

    func upstream(_ name: String) throws(ControlError) -> Config.Upstream {
        guard let upstream = config[upstream: name] else {
            throw ControlError("unknown upstream \"\(name)\"" + didYouMean(name, among: config.upstreams.map(\.name)))
        }
        return upstream
    }

    func blueGreen(_ name: String) throws(ControlError) -> (String, Config.BlueGreen) {
        let candidates = config.upstreams.filter { $0.blueGreen != nil }.map(\.name)
        guard let upstream = config[upstream: name] else {
            throw ControlError("unknown upstream \"\(name)\"" + didYouMean(name, among: candidates)
                + (candidates.isEmpty ? "; no upstream is blue/green" : "; blue/green upstreams: " + candidates.joined(separator: ", ")))
        }
        guard let bg = upstream.blueGreen else {
            throw ControlError("upstream \"\(name)\" is not blue/green"
                + (candidates.isEmpty ? "" : "; blue/green upstreams: " + candidates.joined(separator: ", ")))
        }
        return (name, bg)
    }

    func route(_ name: String) throws(ControlError) -> Config.Route {
        guard let route = config[route: name] else {
            throw ControlError("unknown route \"\(name)\"" + didYouMean(name, among: config.routes.map(\.name)))
        }
        return route
    }
}
