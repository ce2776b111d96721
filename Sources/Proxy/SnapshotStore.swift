// The one place a new routing snapshot is published, with which pools speak TLS. Event loops
// compare an atomic version per request (one relaxed load) and take the lock only when it
// changed.
import Routing
import Synchronization

public final class SnapshotStore: Sendable {
    private struct Published: Sendable {
        var snapshot: Snapshot
        var security: UpstreamSecurity
    }
    private let current: Mutex<Published>
    /// The tables every worker derives from the current snapshot, made once (SnapshotFrozen).
    let freezer = SnapshotFreezer()
    /// Counts publishes (a snapshot republished with new TLS counts too); the loops compare it.
    private let published: Atomic<UInt64>

    public init(_ snapshot: Snapshot, security: UpstreamSecurity = .none) {
        current = Mutex(Published(snapshot: snapshot, security: security))
        published = Atomic(1)
    }

    /// Changes with every publish; cheap enough for every request.
    @inline(__always)
    public var generation: UInt64 { published.load(ordering: .acquiring) }

    public var snapshot: Snapshot { current.withLock { $0.snapshot } }

    /// The snapshot, the TLS of its pools and the publish it came with, read together.
    public var both: (Snapshot, UpstreamSecurity, UInt64) {
        current.withLock { ($0.snapshot, $0.security, published.load(ordering: .relaxed)) }
    }

    public var security: UpstreamSecurity { current.withLock { $0.security } }

    /// Swaps the snapshot in (and, when given, the pools' TLS). Every request routed after this
    /// returns sees it.
    public func publish(_ snapshot: Snapshot, security: UpstreamSecurity? = nil) {
        current.withLock {
            $0.snapshot = snapshot
            if let security { $0.security = security }
            published.wrappingAdd(1, ordering: .releasing)
        }
    }
}
