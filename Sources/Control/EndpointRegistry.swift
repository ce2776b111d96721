// Stable integer ids for endpoint addresses, for the life of the process: an address keeps its
// id across snapshots, reloads and pool edits, so per-loop pools can be arrays indexed by id.
import Synchronization

public final class EndpointRegistry: Sendable {
    private struct State {
        var ids: [String: Int] = [:]
        var addresses: [String] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// The id of `address` (`"host:port"` after resolution, `Address.description`), assigned
    /// on first use; ids are dense, starting at 0, and never reused.
    public func id(for address: String) -> Int {
        state.withLock { state in
            if let id = state.ids[address] { return id }
            let id = state.addresses.count
            state.ids[address] = id
            state.addresses.append(address)
            return id
        }
    }

    /// How many ids have been assigned: per-loop arrays indexed by id need this many slots.
    public var count: Int { state.withLock { $0.addresses.count } }

    /// The address that owns `id`, for metrics and logs.
    public func address(for id: Int) -> String? {
        state.withLock { $0.addresses.indices.contains(id) ? $0.addresses[id] : nil }
    }
}
