// Per route/variant request counts and per endpoint in-flight counts, shared by every worker.
// Slots are assigned by name off the request path (when a worker adopts a snapshot); the
// request path only bumps a relaxed atomic in a fixed table.
import CLinux
import Synchronization

public final class TrafficCounters: @unchecked Sendable {
    public static let capacity = 4096
    /// Request counts by route/variant slot.
    private let requests: UnsafeMutablePointer<UInt64>
    /// In-flight exchanges by endpoint id.
    private let inFlight: UnsafeMutablePointer<UInt64>
    private let names = Mutex<[String: Int]>([:])

    public init() {
        requests = .allocate(capacity: Self.capacity)
        requests.initialize(repeating: 0, count: Self.capacity)
        inFlight = .allocate(capacity: Self.capacity)
        inFlight.initialize(repeating: 0, count: Self.capacity)
    }

    deinit {
        requests.deallocate()
        inFlight.deallocate()
    }

    static func key(route: String, variant: String?) -> String { variant.map { "\(route)\u{0}\($0)" } ?? route }

    /// The slot for a route (and variant); -1 when the table is full.
    func slot(route: String, variant: String?) -> Int {
        let k = Self.key(route: route, variant: variant)
        return names.withLock { m in
            if let s = m[k] { return s }
            guard m.count < Self.capacity else { return -1 }
            m[k] = m.count
            return m.count - 1
        }
    }

    @inline(__always)
    func countRequest(slot: Int) {
        if slot >= 0 { sy_counter_add(requests + slot, 1) }
    }

    @inline(__always)
    func exchangeStarted(endpoint id: Int) {
        if id >= 0 && id < Self.capacity { sy_counter_add(inFlight + id, 1) }
    }

    @inline(__always)
    func exchangeEnded(endpoint id: Int) {
        if id >= 0 && id < Self.capacity { sy_counter_sub(inFlight + id, 1) }
    }

    /// Requests routed so far to a route (all variants when `variant` is nil and the route has
    /// a split: the sum is over the variant slots).
    public func requests(route: String, variant: String?) -> UInt64 {
        let k = Self.key(route: route, variant: variant)
        guard let s = names.withLock({ $0[k] }) else { return 0 }
        return sy_counter_load(requests + s)
    }

    /// Every counted route/variant with its count.
    public func allRequests() -> [(route: String, variant: String?, count: UInt64)] {
        let snapshot = names.withLock { $0 }
        return snapshot.map { (k, s) in
            let parts = k.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : nil, sy_counter_load(requests + s))
        }.sorted { ($0.route, $0.variant ?? "") < ($1.route, $1.variant ?? "") }
    }

    /// Exchanges in progress on an endpoint, over every worker.
    public func inFlight(endpoint id: Int) -> UInt64 {
        guard id >= 0 && id < Self.capacity else { return 0 }
        return sy_counter_load(inFlight + id)
    }
}
