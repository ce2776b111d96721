// Counters of what health checks, ejection, retries and limits did, by upstream: each event loop
// bumps its own table (no line shared between loops), readers add the tables up. Slots are
// assigned by upstream name off the request path, when a worker adopts a snapshot.
import CLinux
import Synchronization

public enum ResilienceCounter: Int, CaseIterable, Sendable {
    /// Attempts made again on another endpoint under the upstream's retry policy.
    case retries
    /// Retries the policy allowed but the budget did not.
    case retryBudgetExhausted
    /// 503s answered at once: every endpoint of the pool unhealthy or ejected.
    case noHealthyEndpoint
    /// Requests sent to an unhealthy pool because of `failOpen`.
    case failOpen
    /// 503s at `maxConnections` (every endpoint busy and no room to wait).
    case rejectedMaxConnections
    /// 503s because `maxPending` requests were already waiting.
    case rejectedMaxPending
    /// Requests that waited for a connection slot, and those whose wait timed out (503).
    case queued
    case pendingTimeouts
    /// Shadow copies not built because every endpoint of the shadow upstream was down.
    case mirrorSkippedDown
    /// Requests sent to an ejected endpoint because no endpoint of the pool passed (panic).
    case panic

    public var metricName: String {
        switch self {
        case .retries: return "switchyard_upstream_policy_retries_total"
        case .retryBudgetExhausted: return "switchyard_upstream_retry_budget_exhausted_total"
        case .noHealthyEndpoint: return "switchyard_upstream_no_healthy_endpoint_total"
        case .failOpen: return "switchyard_upstream_fail_open_total"
        case .rejectedMaxConnections: return "switchyard_upstream_rejected_max_connections_total"
        case .rejectedMaxPending: return "switchyard_upstream_rejected_max_pending_total"
        case .queued: return "switchyard_upstream_pending_total"
        case .pendingTimeouts: return "switchyard_upstream_pending_timeouts_total"
        case .mirrorSkippedDown: return "switchyard_mirror_skipped_down_total"
        case .panic: return "switchyard_upstream_panic_total"
        }
    }

    public var help: String {
        switch self {
        case .retries: return "Requests tried again on another endpoint under the upstream's retry policy."
        case .retryBudgetExhausted: return "Retries refused because the upstream's retry budget was spent."
        case .noHealthyEndpoint: return "Requests answered 503 because no endpoint of the pool was healthy."
        case .failOpen: return "Requests sent to a pool with no healthy endpoint because of failOpen."
        case .rejectedMaxConnections: return "Requests answered 503 because every endpoint was at maxConnections."
        case .rejectedMaxPending: return "Requests answered 503 because maxPending requests were already waiting."
        case .queued: return "Requests that waited for a connection slot (maxConnections reached)."
        case .pendingTimeouts: return "Waiting requests answered 503 after connectMs without a free slot."
        case .mirrorSkippedDown: return "Shadow copies not made because every endpoint of the shadow was down."
        case .panic: return "Requests sent to an ejected endpoint because no endpoint of the pool passed (panic mode)."
        }
    }
}

/// Upstream names to counter slots, for the whole process.
public final class ResilienceSlots: Sendable {
    public static let capacity = 512
    private let names = Mutex<[String: Int]>([:])

    public init() {}

    /// The slot of an upstream; -1 when the table is full.
    func slot(_ name: String) -> Int {
        names.withLock { m in
            if let s = m[name] { return s }
            guard m.count < Self.capacity else { return -1 }
            m[name] = m.count
            return m.count - 1
        }
    }

    public var all: [(name: String, slot: Int)] {
        names.withLock { $0 }.map { ($0.key, $0.value) }.sorted { $0.name < $1.name }
    }
}

/// One event loop's table.
public final class ResilienceStats: @unchecked Sendable {
    private static let width = ResilienceCounter.allCases.count
    private let slots: UnsafeMutablePointer<UInt64>

    public init() {
        let n = ResilienceSlots.capacity * Self.width
        slots = .allocate(capacity: n)
        slots.initialize(repeating: 0, count: n)
    }

    deinit { slots.deallocate() }

    @inline(__always)
    func add(_ c: ResilienceCounter, upstreamSlot s: Int) {
        if s >= 0 && s < ResilienceSlots.capacity { sy_counter_add(slots + s * Self.width + c.rawValue, 1) }
    }

    public func load(_ c: ResilienceCounter, upstreamSlot s: Int) -> UInt64 {
        guard s >= 0 && s < ResilienceSlots.capacity else { return 0 }
        return sy_counter_load(slots + s * Self.width + c.rawValue)
    }
}
