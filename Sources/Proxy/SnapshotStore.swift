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
    private let published: Atomic<UInt64>

    public init(_ snapshot: Snapshot, security: UpstreamSecurity = .none) {
        current = Mutex(Published(snapshot: snapshot, security: security))
        published = Atomic(snapshot.version)
    }

    /// The version last published; cheap enough for every request.
    @inline(__always)
    public var version: UInt64 { published.load(ordering: .acquiring) }

    public var snapshot: Snapshot { current.withLock { $0.snapshot } }

    /// The snapshot and the TLS of its pools, read together.
    public var both: (Snapshot, UpstreamSecurity) { current.withLock { ($0.snapshot, $0.security) } }

    public var security: UpstreamSecurity { current.withLock { $0.security } }

    /// Swaps the snapshot in (and, when given, the pools' TLS). Every request routed after this
    /// returns sees it.
    public func publish(_ snapshot: Snapshot, security: UpstreamSecurity? = nil) {
        current.withLock {
            $0.snapshot = snapshot
            if let security { $0.security = security }
        }
        published.store(snapshot.version, ordering: .releasing)
    }
}
