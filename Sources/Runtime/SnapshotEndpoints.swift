// Whether two snapshots serve from the same endpoints: what decides if a publish has endpoint
// ids or series to give back.
import Config
import Routing

extension Snapshot {
    /// The same upstreams (by name and kind), each pool with the same endpoint ids in the same
    /// order. An endpoint id stands for its address (and TLS name), so nothing was added,
    /// removed or moved.
    func hasSameEndpoints(as other: Snapshot) -> Bool {
        guard upstreams.count == other.upstreams.count else { return false }
        for (a, b) in zip(upstreams, other.upstreams) {
            guard a.name == b.name else { return false }
            switch (a.kind, b.kind) {
            case (.pool(let p), .pool(let q)):
                guard p.sameEndpointIDs(as: q) else { return false }
            case (.blueGreen(let p), .blueGreen(let q)):
                guard p.blue.sameEndpointIDs(as: q.blue), p.green.sameEndpointIDs(as: q.green) else { return false }
            default:
                return false
            }
        }
        return true
    }
}

private extension Pool {
    func sameEndpointIDs(as other: Pool) -> Bool {
        endpoints.count == other.endpoints.count && zip(endpoints, other.endpoints).allSatisfy { $0.id == $1.id }
    }
}
