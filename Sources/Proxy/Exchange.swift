// One request and its answer, as a value: what was decided, where it went, how long each part
// took and how it ended. Created when a request head parses, finished exactly once; counters,
// the outcome metrics, the access log and the error log (Worker.exchangeFinished), and later
// rollout gates, read the finished record and nothing else (Envoy's StreamInfo plays this part).
import HTTP1
import Reactor
import Routing

struct Exchange {
    /// Who made the response: the upstream, or the proxy itself (404, 502, 408...).
    enum Source: UInt8 { case upstream, proxy }

    var decision = Decision()
    /// The snapshot version whose experiments counted this request (ExperimentBinding).
    var experimentsVersion: UInt64 = 0
    /// Endpoint id of the last attempt (-1: none).
    var endpoint = -1
    /// Connection attempts made (the first included), and how many were retries.
    var attempts = 0
    var retries = 0
    /// Balancer indexes of endpoints already tried (bit i), and the last one picked.
    var tried: UInt64 = 0
    var lastPick = -1
    var requestID: UInt64 = 0
    var method: HTTP1.Method = .get
    var isHTTP10 = false
    /// The client's connection may carry another request after this one.
    var keepAlive = true
    /// The response body sent to the client ends where the connection does (no length, no
    /// chunks): cut short, the connection is reset rather than closed.
    var bodyEndsWithClose = false

    /// Monotonic nanoseconds: head parsed, upstream connection ready for the request, response
    /// head received, last response byte written (0: did not happen).
    var headReceivedNs: UInt64 = 0
    var upstreamReadyNs: UInt64 = 0
    var responseHeadNs: UInt64 = 0
    var lastByteNs: UInt64 = 0

    /// Request bytes read from the client (head and body) and response bytes written to it.
    var bytesIn: Int64 = 0
    var bytesOut: Int64 = 0
    /// Bytes of the proxy's own 100 Continue to a body it reads whole: not part of a response,
    /// so they neither stop a retry nor make a broken response final.
    var continueBytes: Int64 = 0
    /// When a body read whole before any attempt was complete, if after the head's turn (0:
    /// not buffered, or complete with its head): a pooled connection is ready from then.
    var bodyBufferedNs: UInt64 = 0
    /// The status sent to the client (0: none was sent).
    var status = 0
    var source = Source.upstream
    /// Shadow copies started for this request.
    var mirrorCopies = 0
    /// The exchange was cut short (client gone, upstream died mid-response).
    var aborted = false
    /// Between the head parsing and `finish`.
    private(set) var isOpen = false

    // Observability: what the metrics, the access log and the error log need of the request.
    /// Series ids (MetricSeries) of the route/variant/upstream, the pool and the endpoint of the
    /// last attempt (-1: none), taken from the snapshot the request routed on.
    var routeSeries: Int32 = -1
    var poolSeries: Int32 = -1
    var endpointSeries: Int32 = -1
    /// The W3C trace id (0, 0: none).
    var traceHi: UInt64 = 0
    var traceLo: UInt64 = 0
    /// Why the proxy answered itself (its error detail).
    var reason: StaticString = ""
    /// The access log samples this exchange; the client sent its own X-Request-Id.
    var logged = false
    var clientRequestID = false
    /// How this request's shadow copies started: the first that did not, else `sent`; nil when
    /// none was asked for.
    var mirrorOutcome: MirrorOutcome?
    /// A comparing shadow asked for the response body's hash (ShadowCompare.swift): folded in
    /// as the body streams through, never held.
    var hashBody = false
    var bodyHash = BodyHash.seed

    init() {}

    init(method: HTTP1.Method, isHTTP10: Bool, keepAlive: Bool, headBytes: Int) {
        self.method = method
        self.isHTTP10 = isHTTP10
        self.keepAlive = keepAlive
        bytesIn = Int64(headBytes)
        headReceivedNs = Sys.monotonicNs()
        isOpen = true
    }

    /// Closes the record; false when it was already closed (so nothing is counted twice).
    mutating func finish(aborted: Bool) -> Bool {
        guard isOpen else { return false }
        isOpen = false
        self.aborted = aborted
        lastByteNs = Sys.monotonicNs()
        return true
    }

    /// Client head to last byte, in nanoseconds.
    var durationNs: UInt64 { lastByteNs >= headReceivedNs ? lastByteNs - headReceivedNs : 0 }

    /// Request sent to response head, in nanoseconds (0 when no upstream answered).
    var upstreamDurationNs: UInt64 {
        responseHeadNs >= upstreamReadyNs && upstreamReadyNs > 0 ? responseHeadNs - upstreamReadyNs : 0
    }
}
