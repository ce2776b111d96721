// A policy of each pool of a snapshot (how its requests are signed, which token they carry),
// by upstream index and color (0: plain or blue, 1: green), with each blue/green upstream's
// live color. Empty when no pool has one, so a request pays one count check.
import Routing

struct PoolTable<Policy: AnyObject> {
    private var byUpstream: [(pools: [Policy?], live: Color?)] = []

    init() {}

    /// `policies`: by pool key (UpstreamSecurity.key).
    init(_ snapshot: Snapshot, _ policies: [String: Policy]) {
        guard !policies.isEmpty else { return }
        byUpstream = snapshot.upstreams.map { u in
            switch u.kind {
            case .pool: return ([policies[UpstreamSecurity.key(upstream: u.name, color: nil)]], nil)
            case .blueGreen(let bg):
                return ([policies[UpstreamSecurity.key(upstream: u.name, color: "blue")],
                         policies[UpstreamSecurity.key(upstream: u.name, color: "green")]], bg.live)
            }
        }
    }

    /// The policy of the pool a decision sends to (a blue/green upstream's live color when the
    /// decision names none).
    @inline(__always)
    func lookup(upstream: Int, color: Color?) -> Policy? {
        guard upstream >= 0 && upstream < byUpstream.count else { return nil }
        let u = byUpstream[upstream]
        return u.pools[u.pools.count == 2 && (color ?? u.live) == .green ? 1 : 0]
    }
}
