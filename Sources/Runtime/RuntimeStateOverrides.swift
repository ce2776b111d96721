// Runtime overrides: what `flip`, `set`, `endpoint` and `reset` changed, kept as data apart from
// the config file, applied on top of it (the effective config), and saved as the state file.
import Config
import Routing

public struct Overrides: Codable, Sendable, Equatable {
    /// Live color ("blue"/"green") by blue/green upstream.
    public var live: [String: String] = [:]
    /// Variant weights by route, then variant.
    public var weights: [String: [String: Int]] = [:]
    /// Mirror percent by route, then shadow upstream; 0 removes a mirror the config has.
    public var mirrors: [String: [String: Double]] = [:]
    /// Pool edits by pool key ("upstream" or "upstream/color").
    public var endpoints: [String: PoolChanges] = [:]
    /// Progressive rollouts by route (Rollout.swift), saved with the weights they reached.
    public var rollouts: [String: RolloutStatus] = [:]
    /// In fleet mode, guarded changes by id, as the Rollouts module writes them (JSON text): in
    /// the shared state so that every instance knows them and the driver bakes them.
    public var guards: [String: String] = [:]

    public init() {}

    public var isEmpty: Bool {
        live.isEmpty && weights.isEmpty && mirrors.isEmpty && endpoints.isEmpty && rollouts.isEmpty && guards.isEmpty
    }

    private enum CodingKeys: String, CodingKey { case live, weights, mirrors, endpoints, rollouts, guards }

    // Every section is optional in the file, so a hand-edited state file may leave some out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        live = try c.decodeIfPresent([String: String].self, forKey: .live) ?? [:]
        weights = try c.decodeIfPresent([String: [String: Int]].self, forKey: .weights) ?? [:]
        mirrors = try c.decodeIfPresent([String: [String: Double]].self, forKey: .mirrors) ?? [:]
        endpoints = try c.decodeIfPresent([String: PoolChanges].self, forKey: .endpoints) ?? [:]
        rollouts = try c.decodeIfPresent([String: RolloutStatus].self, forKey: .rollouts) ?? [:]
        guards = try c.decodeIfPresent([String: String].self, forKey: .guards) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(live, forKey: .live)
        try c.encode(weights, forKey: .weights)
        try c.encode(mirrors, forKey: .mirrors)
        try c.encode(endpoints, forKey: .endpoints)
        if !rollouts.isEmpty { try c.encode(rollouts, forKey: .rollouts) }
        if !guards.isEmpty { try c.encode(guards, forKey: .guards) }
    }
}

/// Runtime edits of one pool. Addresses are `Address.description`: numeric `host:port`, or a
/// host name as written (never the addresses it resolves to, which change).
public struct PoolChanges: Codable, Sendable, Equatable {
    /// Endpoints the config does not list, in the order they were added.
    public var added: [String] = []
    /// Endpoints the config lists that were removed.
    public var removed: [String] = []
    /// Endpoints that take no new requests.
    public var draining: [String] = []

    public init() {}

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && draining.isEmpty }

    /// Records one edit in place (the lists of a large pool are not copied).
    mutating func record(_ action: EndpointAction, _ address: String) {
        switch action {
        case .add:
            draining.removeAll { $0 == address }
            if removed.contains(address) {
                removed.removeAll { $0 == address }
            } else if !added.contains(address) {
                added.append(address)
            }
        case .remove:
            draining.removeAll { $0 == address }
            if added.contains(address) {
                added.removeAll { $0 == address }
            } else if !removed.contains(address) {
                removed.append(address)
            }
        case .drain:
            if !draining.contains(address) { draining.append(address) }
        }
    }

    private enum CodingKeys: String, CodingKey { case added, removed, draining }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        added = try c.decodeIfPresent([String].self, forKey: .added) ?? []
        removed = try c.decodeIfPresent([String].self, forKey: .removed) ?? []
        draining = try c.decodeIfPresent([String].self, forKey: .draining) ?? []
    }
}

/// Names one pool: a plain upstream, or one color of a blue/green upstream.
public struct PoolKey: Hashable, Sendable, CustomStringConvertible {
    public var upstream: String
    public var color: Color?

    public init(upstream: String, color: Color?) {
        self.upstream = upstream
        self.color = color
    }

    /// `upstream` or `upstream/blue|green`; nil for another color word.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        upstream = String(parts[0])
        if parts.count == 1 { color = nil; return }
        guard let color = Color(name: String(parts[1])) else { return nil }
        self.color = color
    }

    public var description: String { color.map { "\(upstream)/\($0.name)" } ?? upstream }
}

extension Color {
    public init?(name: String) {
        switch name {
        case "blue": self = .blue
        case "green": self = .green
        default: return nil
        }
    }
}

public enum EndpointAction: String, Sendable, CaseIterable {
    case add, remove, drain
}

/// One runtime change, already validated against the state it was made on. A transaction keeps
/// its changes as a list and replays them at `commit`.
public enum RuntimeChange: Sendable, Equatable {
    case live(upstream: String, color: Color)
    case weights(route: String, weights: [VariantWeight])
    /// Percent 0 removes the mirror.
    case mirror(route: String, upstream: String, percent: Double)
    case endpoint(EndpointAction, pool: PoolKey, address: String)
    /// Drops every override of the route and/or upstream called `name`.
    case reset(name: String)

    public struct VariantWeight: Sendable, Equatable {
        public var variant: String
        public var weight: Int
        public init(variant: String, weight: Int) {
            self.variant = variant
            self.weight = weight
        }
    }

    /// One line for logs and transaction listings.
    public var summary: String {
        switch self {
        case .live(let upstream, let color): return "set live \(upstream) \(color.name)"
        case .weights(let route, let weights):
            return "set weights \(route) " + weights.map { "\($0.variant)=\($0.weight)" }.joined(separator: " ")
        case .mirror(let route, let upstream, let percent):
            return "set mirror \(route) \(upstream) \(ControlValue.format(percent))"
        case .endpoint(let action, let pool, let address): return "endpoint \(action.rawValue) \(pool) \(address)"
        case .reset(let name): return "reset \(name)"
        }
    }
}

extension Overrides {
    /// Records `change`. Mechanical: the command validated it; `applied(to:)` later drops what
    /// merely restates the config.
    public mutating func apply(_ change: RuntimeChange) {
        switch change {
        case .live(let upstream, let color):
            live[upstream] = color.name
        case .weights(let route, let list):
            for w in list { weights[route, default: [:]][w.variant] = w.weight }
        case .mirror(let route, let upstream, let percent):
            mirrors[route, default: [:]][upstream] = percent
        case .endpoint(let action, let pool, let address):
            let key = pool.description
            endpoints[key, default: PoolChanges()].record(action, address)
            if endpoints[key]?.isEmpty == true { endpoints[key] = nil }
        case .reset(let name):
            live[name] = nil
            weights[name] = nil
            mirrors[name] = nil
            rollouts[name] = nil
            for key in endpoints.keys where PoolKey(parsing: key)?.upstream == name || key == name {
                endpoints[key] = nil
            }
        }
    }

    /// The override names that `reset NAME` would drop.
    public func touches(_ name: String) -> Bool {
        live[name] != nil || weights[name] != nil || mirrors[name] != nil || rollouts[name] != nil
            || endpoints.keys.contains { PoolKey(parsing: $0)?.upstream == name || $0 == name }
    }

    /// The config with these overrides on top. Overrides whose names no longer exist are left
    /// out and reported in `dropped`; those equal to the config's own values are left out
    /// silently. `kept` is what remains.
    public func applied(to file: Config) -> (config: Config, kept: Overrides, dropped: [String]) {
        var config = file
        var kept = Overrides()
        var dropped: [String] = []

        for (name, colorName) in live.sorted(by: { $0.key < $1.key }) {
            guard let color = Color(name: colorName) else {
                dropped.append("live \(name): \"\(colorName)\" is not blue or green")
                continue
            }
            guard var upstream = config[upstream: name] else {
                dropped.append("live \(name): no upstream \"\(name)\" in the config")
                continue
            }
            guard case .blueGreen(var bg) = upstream.kind else {
                dropped.append("live \(name): upstream \"\(name)\" is not blue/green")
                continue
            }
            if bg.live == color { continue }
            bg.live = color
            upstream.kind = .blueGreen(bg)
            config[upstream: name] = upstream
            kept.live[name] = colorName
        }

        for (routeName, variants) in weights.sorted(by: { $0.key < $1.key }) {
            guard var route = config[route: routeName] else {
                dropped.append("weights \(routeName): no route \"\(routeName)\" in the config")
                continue
            }
            guard var split = route.split else {
                dropped.append("weights \(routeName): route \"\(routeName)\" has no split")
                continue
            }
            for (variant, weight) in variants.sorted(by: { $0.key < $1.key }) {
                guard let index = split.variantIndex(named: variant) else {
                    dropped.append("weights \(routeName): no variant \"\(variant)\" in the route")
                    continue
                }
                guard (0...ConfigParser.maxWeight).contains(weight) else {
                    dropped.append("weights \(routeName): weight \(weight) of \"\(variant)\" is out of range")
                    continue
                }
                if split.variants[index].weight == weight { continue }
                split.variants[index].weight = weight
                kept.weights[routeName, default: [:]][variant] = weight
            }
            route.split = split
            config[route: routeName] = route
        }

        for (routeName, shadows) in mirrors.sorted(by: { $0.key < $1.key }) {
            guard var route = config[route: routeName] else {
                dropped.append("mirror \(routeName): no route \"\(routeName)\" in the config")
                continue
            }
            for (upstream, percent) in shadows.sorted(by: { $0.key < $1.key }) {
                guard config[upstream: upstream] != nil else {
                    dropped.append("mirror \(routeName) \(upstream): no upstream \"\(upstream)\" in the config")
                    continue
                }
                guard percent >= 0 && percent <= 100 else {
                    dropped.append("mirror \(routeName) \(upstream): percent \(percent) is out of range")
                    continue
                }
                // A rollout's shadow stage compares its copies (statuses, latency, optionally bodies).
                let stage = rollouts[routeName].flatMap { $0.state == .shadowing ? $0.plan.shadow : nil }
                    .flatMap { $0.upstream == upstream ? $0 : nil }
                let compare = stage.map { Config.Mirror.Compare(status: .exact, latency: true, bodyHash: $0.bodyHash) }
                // Before a blue/green release's flip, and for a canary of the idle color, the
                // copies go to the idle color: the next version.
                let plan = rollouts[routeName]?.plan
                let variant = route.split?.variants.first { $0.name == plan?.variant }
                let idle = stage != nil && (plan?.flip?.upstream == upstream || (variant?.idle == true && variant?.upstream == upstream))
                if let index = route.mirrorIndex(upstream: upstream) {
                    if let stage, percent > 0 {
                        route.mirrors[index].compare = compare
                        route.mirrors[index].methods = stage.methods
                        route.mirrors[index].idle = idle
                    }
                    if route.mirrors[index].percent == percent && stage == nil { continue }
                    if percent == 0 { route.mirrors.remove(at: index) } else { route.mirrors[index].percent = percent }
                } else {
                    if percent == 0 { continue }
                    route.mirrors.append(Config.Mirror(upstream: upstream, percent: percent, methods: stage?.methods ?? Config.Mirror.defaultMethods,
                                                       compare: compare, idle: idle))
                }
                kept.mirrors[routeName, default: [:]][upstream] = percent
            }
            config[route: routeName] = route
        }

        for (key, changes) in endpoints.sorted(by: { $0.key < $1.key }) {
            guard let pool = PoolKey(parsing: key) else {
                dropped.append("endpoints \(key): not UPSTREAM or UPSTREAM/blue|green")
                continue
            }
            guard var upstream = config[upstream: pool.upstream] else {
                dropped.append("endpoints \(key): no upstream \"\(pool.upstream)\" in the config")
                continue
            }
            var keptChanges = PoolChanges()
            let fits = upstream.updatePool(pool.color) { p in
                for address in changes.removed {
                    if let index = p.endpointIndex(address: address) {
                        p.remove(at: index)
                        keptChanges.removed.append(address)
                    } else {
                        dropped.append("endpoints \(key): remove \(address): not in the config's pool")
                    }
                }
                for address in changes.added {
                    if p.endpointIndex(address: address) != nil { continue }
                    do throws(AddressError) {
                        p.append(Config.Endpoint(address: try Address(endpoint: address)))
                        keptChanges.added.append(address)
                    } catch {
                        dropped.append("endpoints \(key): add \(address): \(error.reason)")
                    }
                }
                for address in changes.draining {
                    if let index = p.endpointIndex(address: address) {
                        p.setDraining(true, at: index)
                        keptChanges.draining.append(address)
                    } else {
                        dropped.append("endpoints \(key): drain \(address): not in the pool")
                    }
                }
            }
            guard fits else {
                dropped.append("endpoints \(key): " + (pool.color == nil
                    ? "upstream \"\(pool.upstream)\" is blue/green; name a color"
                    : "upstream \"\(pool.upstream)\" is not blue/green"))
                continue
            }
            config[upstream: pool.upstream] = upstream
            if !keptChanges.isEmpty { kept.endpoints[key] = keptChanges }
        }
        // A rollout stays while its route still splits between its variants (a flip release: while
        // its route is there and its upstream still has colors).
        for (routeName, status) in rollouts.sorted(by: { $0.key < $1.key }) {
            // Bounded like the config's and the command's: a hand-edited step or clock must not trap.
            if let problem = status.problem() {
                dropped.append("rollout \(routeName): \(problem)")
                continue
            }
            if let flip = status.plan.flip {
                guard config[route: routeName] != nil, config[upstream: flip.upstream]?.blueGreen != nil else { continue }
                if !status.plan.flipsAfterSteps {
                    kept.rollouts[routeName] = status
                    continue
                }
            }
            if let split = config[route: routeName]?.split, split.variantIndex(named: status.plan.variant) != nil,
               split.variantIndex(named: status.plan.baseline) != nil {
                kept.rollouts[routeName] = status
            }
        }
        // Guards change nothing that is served; the Rollouts module reads and checks them.
        kept.guards = guards
        return (config, kept, dropped)
    }
}
