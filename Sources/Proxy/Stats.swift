// Counters each worker bumps on its own thread and the control plane reads at any time
// (relaxed atomics: a reader sees a recent value, the request path never takes a lock).
import CLinux

public enum Counter: Int, CaseIterable, Sendable {
    case connectionsAccepted, connectionsRejected, requests, responses2xx, responses3xx, responses4xx,
         responses5xx, upstreamConnects, upstreamConnectFailures, upstreamRetries, upstreamTimeouts,
         clientTimeouts, noRoute, mirrorsSent, mirrorsDropped, mirrorsSkippedBody, mirrorsFailed,
         mirrorsCompleted, activeClients, activeUpstreams, acceptPauses,
         tlsHandshakes, tlsResumed, tlsHandshakeFailures, tlsHandshakeTimeouts, tlsClosedBeforeHandshake,
         upstreamTLSHandshakes, upstreamTLSResumed, upstreamTLSFailures,
         accessLogDropped, signedRequests, signedBodyTooLarge
}

public final class WorkerStats: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<UInt64>

    public init() {
        slots = .allocate(capacity: Counter.allCases.count)
        slots.initialize(repeating: 0, count: Counter.allCases.count)
    }

    deinit { slots.deallocate() }

    @inline(__always)
    public func add(_ c: Counter, _ v: UInt64 = 1) { sy_counter_add(slots + c.rawValue, v) }

    @inline(__always)
    public func sub(_ c: Counter, _ v: UInt64 = 1) { sy_counter_sub(slots + c.rawValue, v) }

    /// Counts a response by status class (proxied or answered by the proxy itself).
    @inline(__always)
    func countResponse(status: Int) {
        switch status {
        case ..<300: add(.responses2xx)
        case 300..<400: add(.responses3xx)
        case 400..<500: add(.responses4xx)
        default: add(.responses5xx)
        }
    }

    public func load(_ c: Counter) -> UInt64 { sy_counter_load(slots + c.rawValue) }
}
