// One event loop's share of the labelled metrics: flat slot tables indexed by series id (see
// MetricSeries), written by that loop only with plain loads and stores (no locked instruction,
// no cache line shared with another loop) and summed over the workers when /metrics or
// `show stats` reads them. Adding a family is one more `SlotTable` here, keyed by one of the
// MetricSeries tables, and one section in the exposition (Control's AdminMetrics).
import CLinux
import Glibc

/// `stride` slots per series id, zero until written. The memory is calloc'd: pages no series
/// touches cost address space, not memory.
public final class SlotTable: @unchecked Sendable {
    public let stride: Int
    public let capacity: Int
    private let slots: UnsafeMutablePointer<UInt64>

    public init(stride: Int, capacity: Int) {
        self.stride = stride
        self.capacity = capacity
        let raw = calloc(stride * capacity, MemoryLayout<UInt64>.stride)!
        slots = raw.bindMemory(to: UInt64.self, capacity: stride * capacity)
    }

    deinit { free(slots) }

    /// Loop thread only.
    @inline(__always)
    public func add(_ id: Int, _ offset: Int, _ v: UInt64 = 1) {
        if id >= 0 && id < capacity { sy_local_add(slots + (id &* stride &+ offset), v) }
    }

    /// Loop thread only.
    @inline(__always)
    public func sub(_ id: Int, _ offset: Int, _ v: UInt64 = 1) {
        if id >= 0 && id < capacity { sy_local_sub(slots + (id &* stride &+ offset), v) }
    }

    /// Any thread: a recent value.
    public func load(_ id: Int, _ offset: Int) -> UInt64 {
        guard id >= 0 && id < capacity && offset < stride else { return 0 }
        return sy_counter_load(slots + id * stride + offset)
    }
}

/// Fixed log-spaced buckets from 0.5 ms to 30 s, the same for every latency histogram so they
/// can be summed and compared. Slots per series: one per bucket (not cumulative), the overflow
/// (+Inf), then the sum in nanoseconds.
public enum LatencyBuckets {
    public static let boundsNs: [UInt64] = [
        500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
    ]
    /// The `le` label of each bound, as Prometheus prints seconds.
    public static let labels = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                "1", "2.5", "5", "10", "30"]
    public static var count: Int { boundsNs.count }
    /// Slots per series: buckets, +Inf, sum.
    public static var stride: Int { boundsNs.count + 2 }
    public static var sumOffset: Int { boundsNs.count + 1 }

    @inline(__always)
    static func bucket(_ ns: UInt64) -> Int {
        // Most answers fall in the first few buckets: a short scan beats a search.
        var i = 0
        while i < 15 && ns > boundsNs[i] { i += 1 }
        return i
    }
}

extension SlotTable {
    /// Records one latency in a histogram table (stride `LatencyBuckets.stride`).
    @inline(__always)
    func observe(_ id: Int, ns: UInt64) {
        add(id, LatencyBuckets.bucket(ns))
        add(id, LatencyBuckets.sumOffset, ns)
    }
}

/// The labelled slots of one worker.
public final class WorkerMetrics: Sendable {
    /// By route series: responses by status class and source, slot `(class - 1) * 2 + source`
    /// (class 1...5, source 0 upstream, 1 proxy).
    public let responses: SlotTable
    /// By route series: client head received to last byte sent.
    public let requestDuration: SlotTable
    /// By route series: requests routed (counted when decided, as the old per-route counter was),
    /// slot 0; slot 1, those whose override or preview header was ignored as untrusted.
    public let routed: SlotTable
    /// By pool series: request sent to response head.
    public let upstreamResponse: SlotTable
    /// By endpoint series: exchanges in flight.
    public let inFlight: SlotTable
    /// By pool series: open tunnels (slot 0) and responses being relayed (slot 1) that started
    /// on that pool (WorkerTunnels.swift).
    public let longLived: SlotTable
    /// By mirror series: copies by `MirrorOutcome`.
    public let mirrors: SlotTable
    /// By mirror series: shadow comparisons by `ShadowResult`, the shadow's and the primary's
    /// latency of compared requests, and the last mismatches (ShadowCompare.swift).
    public let shadowComparisons: SlotTable
    public let shadowResponse: SlotTable
    public let shadowPrimaryResponse: SlotTable
    public let shadowMismatches = ShadowMismatchLog()

    public init(series: MetricSeries) {
        responses = SlotTable(stride: 10, capacity: series.routes.capacity)
        requestDuration = SlotTable(stride: LatencyBuckets.stride, capacity: series.routes.capacity)
        routed = SlotTable(stride: 2, capacity: series.routes.capacity)
        upstreamResponse = SlotTable(stride: LatencyBuckets.stride, capacity: series.pools.capacity)
        inFlight = SlotTable(stride: 1, capacity: series.endpoints.capacity)
        longLived = SlotTable(stride: 2, capacity: series.pools.capacity)
        mirrors = SlotTable(stride: MirrorOutcome.allCases.count, capacity: series.mirrors.capacity)
        shadowComparisons = SlotTable(stride: ShadowResult.allCases.count, capacity: series.mirrors.capacity)
        shadowResponse = SlotTable(stride: LatencyBuckets.stride, capacity: series.mirrors.capacity)
        shadowPrimaryResponse = SlotTable(stride: LatencyBuckets.stride, capacity: series.mirrors.capacity)
    }

    /// The slot of a status in `responses`.
    @inline(__always)
    static func responseSlot(status: Int, proxy: Bool) -> Int {
        let cls = min(max(status / 100, 1), 5)
        return (cls - 1) * 2 + (proxy ? 1 : 0)
    }
}

/// How a shadow copy ended (or why it never started).
public enum MirrorOutcome: Int, CaseIterable, Sendable {
    case sent, completed, failed, dropped, skipped

    public var name: String {
        switch self {
        case .sent: "sent"
        case .completed: "completed"
        case .failed: "failed"
        case .dropped: "dropped"
        case .skipped: "skipped"
        }
    }
}
