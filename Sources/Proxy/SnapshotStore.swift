// The one place a new routing snapshot is published. Event loops compare an atomic version per
// request (one relaxed load) and take the lock only when it changed.
import Routing
import Synchronization

public final class SnapshotStore: Sendable {
    private let current: Mutex<Snapshot>
    private let published: Atomic<UInt64>

    public init(_ snapshot: Snapshot) {
        current = Mutex(snapshot)
        published = Atomic(snapshot.version)
    }

    /// The version last published; cheap enough for every request.
    @inline(__always)
    public var version: UInt64 { published.load(ordering: .acquiring) }

    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Swaps the snapshot in. Every request routed after this returns sees it.
    public func publish(_ snapshot: Snapshot) {
        current.withLock { $0 = snapshot }
        published.store(snapshot.version, ordering: .releasing)
    }
}
