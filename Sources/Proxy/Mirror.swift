// Shadow copies of a request. Each copy is its own request on a connection of the shadow
// endpoint's keep-alive pool, the one primary requests use; its response is read and thrown
// away. The primary never waits for a copy:
// copies in flight are capped per shadow upstream, bodies are copied only up to the mirror's
// maxBodyBytes, and a copy that cannot keep up is dropped and counted, never queued.
import Glibc
import HTTP1
import Reactor
import Routing

/// Per shadow upstream, this worker's share of its limits: copies in flight (`maxInFlight`) and
/// bytes of copies held, unsent or unanswered (`maxBufferBytes`). One gate lives as long as the
/// upstream's name, so copies started under an old snapshot are still counted after a reload
/// changes the limits.
final class MirrorGate {
    var cap: Int
    var byteCap: Int
    var inFlight = 0
    var bytes = 0

    init(cap: Int, byteCap: Int) {
        self.cap = cap
        self.byteCap = byteCap
    }

    /// Worker `index`'s share of a limit split over `workers` workers: `total / workers`, one
    /// more for the first `total % workers`, so the shares sum to `total` exactly (rounding each
    /// up let the workers together exceed it by up to workers - 1). A share of 0 admits no copy.
    static func share(of total: Int, worker index: Int, workers: Int) -> Int {
        let n = max(1, workers)
        return total / n + (index % n < total % n ? 1 : 0)
    }

    /// Whether one more copy may start, with `bodyBytes` of body known up front.
    func admitsCopy(bodyBytes: Int) -> Bool { inFlight < cap && admits(bytes: bodyBytes) }

    /// Whether `count` more bytes fit in the buffer budget.
    func admits(bytes count: Int) -> Bool { bytes + count <= byteCap }
}

extension HTTP1.Method {
    /// Methods whose effect is the same however many times a request is received (RFC 9110
    /// 9.2.2): only their copies are sent again after a shadow may have processed them.
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .put, .delete, .trace: return true
        case .post, .patch, .connect, .other: return false
        }
    }
}

/// The copies made of one primary request.
final class MirrorFanout {
    private var copies: [MirrorCopy]

    private init(copies: [MirrorCopy]) { self.copies = copies }

    /// Starts the copies a decision asks for; the fanout that follows their bodies (nil when no
    /// copy has a body to follow), how many copies started, and how the first that did not
    /// start ended (else `sent`).
    static func start(worker: Worker, snapshot: Snapshot, decision: Decision, view: RequestView,
                      clientIP: [UInt8], clientAddress: ClientAddress, secure: Bool, requestID: UInt64,
                      trace: TraceContext = TraceContext(),
                      body bodyMode: Relay.RequestBody, contentLength: Int64) -> (MirrorFanout?, Int, MirrorOutcome) {
        var started = 0
        var outcome = MirrorOutcome.sent
        var copies: [MirrorCopy] = []
        var bits = decision.mirrorMask
        let mirrors = snapshot.routes[decision.route].mirrors
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            bits &= bits - 1
            guard i < mirrors.count else { break }
            let m = mirrors[i]
            if bodyMode == .tunnel || view.head.upgrade { continue }
            let series = Int(worker.series.mirror(route: decision.route, index: i))
            func notStarted(_ c: Counter, _ o: MirrorOutcome) {
                worker.stats.add(c)
                worker.metrics.mirrors.add(series, o.rawValue)
                if outcome == .sent { outcome = o }
            }
            // An idle-color mirror copies to the next version of a blue/green upstream.
            let live = worker.liveColor(upstream: m.upstream)
            let color = m.idle ? live?.other : live
            // A copy to a signing shadow holds its head until its body is whole, then signs it
            // over the body (MirrorCopy.held): its body is bounded by the signing's limit too.
            let signing = worker.signing.lookup(upstream: m.upstream, color: color)
            let maxBodyBytes = signing.map { min(m.maxBodyBytes, Int(clamping: $0.maxBodyBytes)) } ?? m.maxBodyBytes
            if bodyMode == .length && contentLength > Int64(maxBodyBytes) {
                notStarted(.mirrorsSkippedBody, .skipped)
                continue
            }
            // A shadow whose every endpoint is unhealthy or ejected costs nothing: no copy is
            // built, and it ends as failed like any copy that could not reach its shadow.
            guard let endpoint = worker.pickMirrorEndpoint(upstream: m.upstream, color: color) else {
                notStarted(.mirrorsFailed, .failed)
                worker.resilience.count(.mirrorSkippedDown, upstream: m.upstream)
                continue
            }
            let gate = worker.mirrorGate(upstream: m.upstream)
            // A body of known length must fit the buffer budget whole; a chunked one is
            // checked as it streams.
            guard gate.admitsCopy(bodyBytes: bodyMode == .length ? Int(contentLength) : 0) else {
                notStarted(.mirrorsDropped, .dropped)
                continue
            }
            guard worker.mirrorEndpointUp(endpoint) else {
                // Refused a moment ago on this loop: not built either.
                notStarted(.mirrorsFailed, .failed)
                worker.resilience.count(.mirrorSkippedDown, upstream: m.upstream)
                continue
            }
            let copy = MirrorCopy(worker: worker, gate: gate, endpoint: endpoint, maxBodyBytes: maxBodyBytes,
                                  bodyExpected: bodyMode != .none, method: view.head.method, series: series)
            if m.compare.enabled {
                copy.compare = worker.shadowSide(requestID: requestID, spec: m.compare, series: series, view: view)
            }
            HeadWriter.writeRequest(view, snapshot: snapshot, decision: decision, clientIP: clientIP, clientAddress: clientAddress,
                                    secure: secure, requestID: requestID,
                                    shadow: true, hostSuffix: m.hostSuffix, stripHeaders: m.stripHeaders, trace: trace,
                                    hostHeader: snapshot.hostHeader(upstream: m.upstream, color: color),
                                    setHeaders: snapshot.setHeaders(upstream: m.upstream, color: color),
                                    into: &copy.data, pool: worker.buffers)
            if let bearer = worker.bearers.lookup(upstream: m.upstream, color: color) {
                worker.bear(&copy.data, with: bearer)
            }
            if let signing {
                if bodyMode == .none {
                    worker.sign(&copy.data, with: signing, body: UnsafeRawBufferPointer(start: nil, count: 0))
                } else {
                    copy.holdForSigning(signing, chunked: bodyMode == .chunked)
                }
            }
            gate.inFlight += 1
            gate.bytes += copy.data.readableCount
            started += 1
            worker.stats.add(.mirrorsSent)
            worker.metrics.mirrors.add(series, MirrorOutcome.sent.rawValue)
            if !copy.waitsForBody { worker.dispatchCopy(copy) }
            // A copy without a body is complete once sent: the fanout need not follow it.
            if bodyMode != .none { copies.append(copy) }
        }
        return (copies.isEmpty ? nil : MirrorFanout(copies: copies), started, outcome)
    }

    /// Body bytes of the primary, as they stream.
    func copyBody(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        for c in copies { c.appendBody(bytes) }
    }

    func bodyComplete() {
        for c in copies { c.bodyDone() }
    }

    /// The primary finished; copies go on by themselves, but one whose head waits for a body
    /// that will not come now is cut off.
    func primaryDone() {
        for c in copies where c.waitsForBody { c.cancel() }
        copies.removeAll()
    }

    /// The primary ended before its body was complete: copies with a partial body are cut off.
    func abandon() {
        for c in copies where !c.bodyComplete { c.cancel() }
        copies.removeAll()
    }
}
