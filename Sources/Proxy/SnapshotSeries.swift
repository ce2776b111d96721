// A worker's series ids for its current snapshot, worked out once when it adopts the snapshot:
// a request looks its ids up by decision indexes in flat arrays and never builds a label.
import Routing

struct SnapshotSeries {
    /// routes[routeBase[route] + variant + 1]: variant -1 is a plain route's only series, or a
    /// split's when no variant could be chosen.
    private var routes: [Int32] = []
    private var routeBase: [Int] = []
    /// Requests no route took (404, or a head that never parsed).
    private(set) var noRoute: Int32 = -1
    /// pools[upstream * 2 + color], color 0 for blue or an uncolored pool, 1 for green.
    private var pools: [Int32] = []
    /// endpoints[endpointBase[upstream * 2 + color] + index in the pool].
    private var endpoints: [Int32] = []
    private var endpointBase: [Int] = []
    /// mirrors[mirrorBase[route] + index in the route's mirrors].
    private var mirrors: [Int32] = []
    private var mirrorBase: [Int] = []

    /// The label values of every id above, for the access log's fragments.
    private(set) var labelled: [(kind: Kind, id: Int32, values: [String])] = []
    enum Kind { case route, pool, endpoint }

    init() {}

    init(_ snapshot: Snapshot, _ series: MetricSeries) {
        let none = MetricSeries.none
        func note(_ kind: Kind, _ id: Int, _ values: [String]) -> Int32 {
            if id >= 0 { labelled.append((kind, Int32(id), values)) }
            return Int32(id)
        }
        noRoute = note(.route, series.routes.id([none, none, none]), [none, none, none])
        for r in snapshot.routes {
            routeBase.append(routes.count)
            mirrorBase.append(mirrors.count)
            switch r.target {
            case .upstream(let u):
                let v = [r.name, MetricSeries.defaultVariant, snapshot.upstreams[u].name]
                routes.append(note(.route, series.routes.id(v), v))
            case .split(let split):
                let v = [r.name, none, none]
                routes.append(note(.route, series.routes.id(v), v))
                for variant in split.variants {
                    let v = [r.name, variant.name, snapshot.upstreams[variant.upstream].name]
                    routes.append(note(.route, series.routes.id(v), v))
                }
            }
            for m in r.mirrors {
                mirrors.append(Int32(series.mirrors.id([r.name, snapshot.upstreams[m.upstream].name])))
            }
        }
        for u in snapshot.upstreams {
            let colored = u.colorPools
            for c in 0..<2 {
                guard c < colored.count else {
                    pools.append(-1)
                    endpointBase.append(endpoints.count)
                    continue
                }
                let (color, pool) = colored[c]
                let colorName = color?.name ?? MetricSeries.noColor
                let v = [u.name, colorName]
                pools.append(note(.pool, series.pools.id(v), v))
                endpointBase.append(endpoints.count)
                for e in pool.endpoints {
                    let v = [u.name, colorName, e.address]
                    endpoints.append(note(.endpoint, series.endpoints.id(v, endpointID: e.id), v))
                }
            }
        }
    }

    @inline(__always)
    func route(_ d: Decision) -> Int32 {
        guard d.route >= 0 && d.route < routeBase.count else { return noRoute }
        let i = routeBase[d.route] + d.variant + 1
        let end = d.route + 1 < routeBase.count ? routeBase[d.route + 1] : routes.count
        return i >= routeBase[d.route] && i < end ? routes[i] : noRoute
    }

    @inline(__always)
    func pool(upstream: Int, color: Color?) -> Int32 {
        let i = upstream * 2 + (color == .green ? 1 : 0)
        return upstream >= 0 && i < pools.count ? pools[i] : -1
    }

    @inline(__always)
    func endpoint(upstream: Int, color: Color?, index: Int) -> Int32 {
        let p = upstream * 2 + (color == .green ? 1 : 0)
        guard upstream >= 0 && p < endpointBase.count else { return -1 }
        let i = endpointBase[p] + index
        let end = p + 1 < endpointBase.count ? endpointBase[p + 1] : endpoints.count
        return i < end ? endpoints[i] : -1
    }

    @inline(__always)
    func mirror(route: Int, index: Int) -> Int32 {
        guard route >= 0 && route < mirrorBase.count else { return -1 }
        let i = mirrorBase[route] + index
        let end = route + 1 < mirrorBase.count ? mirrorBase[route + 1] : mirrors.count
        return i < end ? mirrors[i] : -1
    }
}
