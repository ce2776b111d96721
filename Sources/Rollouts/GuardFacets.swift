// What a change touched, value by value (before and after), and the changes that set each value
// back: a guard's revert is these inverses, committed as one change.
import Config
import Routing
import Runtime

/// One value a change set, as text: a live color, a weight, a mirror percent ("0" for none),
/// an endpoint's state in its pool (`absent`, `serving`, `draining`).
struct GuardFacet: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case live(upstream: String)
        case weight(route: String, variant: String)
        case mirror(route: String, upstream: String)
        case endpoint(pool: PoolKey, address: String)
    }

    var kind: Kind
    var before: String
    var after: String

    var name: String {
        switch kind {
        case .live(let u): return "live \(u)"
        case .weight(let r, let v): return "weight \(r)/\(v)"
        case .mirror(let r, let u): return "mirror \(r) \(u)"
        case .endpoint(let p, let a): return "endpoint \(p) \(a)"
        }
    }

    /// The value of `kind` in `config`; nil when it names nothing there.
    static func value(_ kind: Kind, in config: Config) -> String? {
        switch kind {
        case .live(let u):
            return config[upstream: u]?.blueGreen?.live.name
        case .weight(let r, let v):
            return config[route: r]?.split?.variants.first { $0.name == v }.map { String($0.weight) }
        case .mirror(let r, let u):
            guard let route = config[route: r] else { return nil }
            return ControlValue.format(route.mirrorIndex(upstream: u).map { route.mirrors[$0].percent } ?? 0)
        case .endpoint(let p, let a):
            guard let pool = config[upstream: p.upstream]?.pool(p.color) else { return nil }
            guard let i = pool.endpointIndex(address: a) else { return "absent" }
            return pool.endpoints[i].draining ? "draining" : "serving"
        }
    }

    /// The changes that set this facet back to `before` from `after`.
    var inverse: [RuntimeChange] {
        switch kind {
        case .live(let u):
            return Color(name: before).map { [.live(upstream: u, color: $0)] } ?? []
        case .weight(let r, let v):
            return Int(before).map { [.weights(route: r, weights: [.init(variant: v, weight: $0)])] } ?? []
        case .mirror(let r, let u):
            return Double(before).map { [.mirror(route: r, upstream: u, percent: $0)] } ?? []
        case .endpoint(let p, let a):
            switch before {
            case "absent": return [.endpoint(.remove, pool: p, address: a)]
            case "serving": return [.endpoint(.add, pool: p, address: a)]
            default: return after == "absent" ? [.endpoint(.add, pool: p, address: a), .endpoint(.drain, pool: p, address: a)]
                                             : [.endpoint(.drain, pool: p, address: a)]
            }
        }
    }

    /// What `changes` touched, with the values before and after: only the routes and
    /// upstreams they name are compared, and only differing values are kept.
    static func diff(_ changes: [RuntimeChange], before: Config, after: Config) -> [GuardFacet] {
        var upstreams: [String] = []
        var routes: [String] = []
        for change in changes {
            switch change {
            case .live(let u, _): upstreams.append(u)
            case .weights(let r, _), .mirror(let r, _, _): routes.append(r)
            case .endpoint(_, let p, _): upstreams.append(p.upstream)
            case .reset(let name): upstreams.append(name); routes.append(name)
            }
        }
        var kinds: [Kind] = []
        for u in Set(upstreams).sorted() {
            let a = before[upstream: u], b = after[upstream: u]
            if a?.blueGreen != nil || b?.blueGreen != nil { kinds.append(.live(upstream: u)) }
            for color in [Color?.none, .blue, .green] {
                var addresses: [String] = []
                for pool in [a?.pool(color), b?.pool(color)].compactMap({ $0 }) {
                    for e in pool.endpoints where !addresses.contains(e.address.description) { addresses.append(e.address.description) }
                }
                kinds += addresses.map { .endpoint(pool: PoolKey(upstream: u, color: color), address: $0) }
            }
        }
        for r in Set(routes).sorted() {
            let a = before[route: r], b = after[route: r]
            var variants: [String] = []
            for v in (a?.split?.variants ?? []) + (b?.split?.variants ?? []) where !variants.contains(v.name) { variants.append(v.name) }
            kinds += variants.map { .weight(route: r, variant: $0) }
            var shadows: [String] = []
            for m in (a?.mirrors ?? []) + (b?.mirrors ?? []) where !shadows.contains(m.upstream) { shadows.append(m.upstream) }
            kinds += shadows.map { .mirror(route: r, upstream: $0) }
        }
        return kinds.compactMap { kind in
            guard let x = value(kind, in: before), let y = value(kind, in: after), x != y else { return nil }
            return GuardFacet(kind: kind, before: x, after: y)
        }
    }
}
