// Stable integer ids for endpoint addresses: an address keeps its id across snapshots, reloads
// and pool edits while any snapshot or exchange uses it, so per-loop pools can be arrays indexed
// by id. Entries of endpoints gone from the current snapshot, with nothing in flight, are
// released: a proxy whose pools churn through thousands of addresses keeps only the live ones.
import Config
import Proxy
import Routing
import Synchronization

public final class EndpointRegistry: Sendable {
    private struct State {
        var ids: [String: Int] = [:]
        /// By id, what metrics and logs call it (its address); nil once released.
        var addresses: [String?] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// The id of `key` (an `EndpointIdentity`: `"host:port"` after resolution, plus the TLS
    /// policy when reached over TLS), assigned on first use; `label` (the address alone) is what
    /// metrics and logs show, the key itself when nil. Ids are dense, starting at 0, and never
    /// reused (per-loop state indexed by a released id may outlive it), so a key released and
    /// added again gets a new one.
    public func id(for key: String, label: String? = nil) -> Int {
        state.withLock { state in
            if let id = state.ids[key] { return id }
            let id = state.addresses.count
            state.ids[key] = id
            state.addresses.append(label ?? key)
            return id
        }
    }

    /// The id of `address` if it holds one, without assigning one.
    public func existingID(for address: String) -> Int? { state.withLock { $0.ids[address] } }

    /// Ids of `address` and of the same address reached over TLS under any name
    /// (`EndpointIdentity`): what an operator means by "this endpoint".
    public func ids(forAddress address: String) -> [Int] {
        state.withLock { s in
            s.ids.compactMap { key, id in EndpointIdentity.isEndpoint(key, at: address) ? id : nil }.sorted()
        }
    }

    /// How many ids have been assigned: per-loop arrays indexed by id need this many slots.
    public var count: Int { state.withLock { $0.addresses.count } }

    /// How many addresses hold an id now (assigned and not released).
    public var heldCount: Int { state.withLock { $0.ids.count } }

    /// The address of the endpoint `id` names, for metrics and logs; nil once released.
    public func address(for id: Int) -> String? {
        state.withLock { $0.addresses.indices.contains(id) ? $0.addresses[id] : nil }
    }

    /// Releases every entry not in `current` (the endpoint ids of the snapshot just published)
    /// with nothing in flight on it; an entry still in flight is kept for a later call. Returns
    /// how many were released.
    @discardableResult
    public func release(keeping current: Set<Int>, inFlight: (Int) -> UInt64) -> Int {
        state.withLock { state in
            var released = 0
            for (address, id) in state.ids where !current.contains(id) && inFlight(id) == 0 {
                state.ids[address] = nil
                state.addresses[id] = nil
                released += 1
            }
            return released
        }
    }
}

extension Snapshot {
    /// The ids of every endpoint of every upstream (both colors of blue/green ones), each once,
    /// in ascending order.
    public var endpointIDs: [Int] {
        var ids = Set<Int>()
        for u in upstreams {
            switch u.kind {
            case .pool(let p): for e in p.endpoints { ids.insert(e.id) }
            case .blueGreen(let bg): for e in bg.blue.endpoints + bg.green.endpoints { ids.insert(e.id) }
            }
        }
        return ids.sorted()
    }
}
