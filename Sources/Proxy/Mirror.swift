// Shadow copies of a request. Each copy is its own request on the shadow upstream's own
// connection pool; its response is read and thrown away. The primary never waits for a copy:
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
            if bodyMode == .length && contentLength > Int64(m.maxBodyBytes) {
                notStarted(.mirrorsSkippedBody, .skipped)
                continue
            }
            // A shadow whose every endpoint is unhealthy or ejected costs nothing: no copy is
            // built, and it ends as failed like any copy that could not reach its shadow.
            guard let endpoint = worker.pickMirrorEndpoint(upstream: m.upstream) else {
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
            let color = worker.liveColor(upstream: m.upstream)
            guard worker.mirrorEndpointUp(endpoint) else {
                // Refused a moment ago on this loop: not built either.
                notStarted(.mirrorsFailed, .failed)
                worker.resilience.count(.mirrorSkippedDown, upstream: m.upstream)
                continue
            }
            let copy = MirrorCopy(worker: worker, gate: gate, endpoint: endpoint, maxBodyBytes: m.maxBodyBytes,
                                  bodyExpected: bodyMode != .none, method: view.head.method, series: series)
            if m.compare.enabled {
                copy.compare = worker.shadowSide(requestID: requestID, spec: m.compare, series: series, view: view)
            }
            HeadWriter.writeRequest(view, snapshot: snapshot, decision: decision, clientIP: clientIP, clientAddress: clientAddress,
                                    secure: secure, requestID: requestID,
                                    shadow: true, hostSuffix: m.hostSuffix, stripHeaders: m.stripHeaders, trace: trace,
                                    hostHeader: snapshot.hostHeader(upstream: m.upstream, color: color),
                                    into: &copy.data, pool: worker.buffers)
            gate.inFlight += 1
            gate.bytes += copy.data.readableCount
            started += 1
            worker.stats.add(.mirrorsSent)
            worker.metrics.mirrors.add(series, MirrorOutcome.sent.rawValue)
            worker.dispatchMirror(copy)
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

    /// The primary finished; copies go on by themselves.
    func primaryDone() { copies.removeAll() }

    /// The primary ended before its body was complete: copies with a partial body are cut off.
    func abandon() {
        for c in copies where !c.bodyComplete { c.cancel() }
        copies.removeAll()
    }
}

/// One shadow request: its bytes (kept whole until answered, so a copy caught behind a
/// connection the shadow closed can be sent again on another) and its outcome.
final class MirrorCopy {
    unowned(unsafe) let worker: Worker
    let gate: MirrorGate
    let endpoint: Endpoint
    let maxBodyBytes: Int
    let method: HTTP1.Method
    let hasBody: Bool
    var data = ByteBuffer()
    /// Bytes of `data` already written on the current connection.
    var sent = 0
    var bodyBytes = 0
    private(set) var bodyComplete: Bool
    var finished = false
    var retried = false
    /// The connection carrying this copy; cleared whenever the copy leaves its queue.
    var connection: MirrorConnection?

    /// The {route,shadow} series its outcome is counted in.
    let series: Int
    /// Its side of a shadow comparison (nil: its mirror does not compare).
    var compare: ShadowSide?

    init(worker: Worker, gate: MirrorGate, endpoint: Endpoint, maxBodyBytes: Int, bodyExpected: Bool, method: HTTP1.Method,
         series: Int) {
        self.worker = worker
        self.series = series
        self.gate = gate
        self.endpoint = endpoint
        self.maxBodyBytes = maxBodyBytes
        self.hasBody = bodyExpected
        self.bodyComplete = !bodyExpected
        self.method = method
    }

    var fullySent: Bool { bodyComplete && sent == data.readableCount }

    func appendBody(_ bytes: UnsafeRawBufferPointer) {
        guard !finished else { return }
        if bodyBytes + bytes.count > maxBodyBytes {
            cancel(counting: .mirrorsSkippedBody)
            return
        }
        guard gate.admits(bytes: bytes.count) else {
            // The shadow upstream's buffer budget is spent: this copy gives way.
            cancel(counting: .mirrorsDropped)
            return
        }
        bodyBytes += bytes.count
        gate.bytes += bytes.count
        data.append(bytes, pool: worker.buffers)
        connection?.markDirty()
    }

    func bodyDone() {
        bodyComplete = true
        connection?.markDirty()
    }

    /// The copy cannot be completed: the primary ended before its body did (a failure), or the
    /// body went over a limit (counted as skipped or dropped instead).
    func cancel(counting outcome: Counter = .mirrorsFailed) {
        guard !finished else { return }
        if let c = connection { c.cancelInFlight(self) }
        finish(outcome)
    }

    /// Ends the copy, counted once as `outcome`: completed, failed, dropped or skipped.
    func finish(_ outcome: Counter) {
        guard !finished else { return }
        finished = true
        connection = nil
        gate.inFlight -= 1
        gate.bytes -= data.readableCount
        worker.stats.add(outcome)
        let labelled: MirrorOutcome = switch outcome {
        case .mirrorsCompleted: .completed
        case .mirrorsDropped: .dropped
        case .mirrorsSkippedBody: .skipped
        default: .failed
        }
        worker.metrics.mirrors.add(series, labelled.rawValue)
        data.release(to: worker.buffers)
        if let side = compare {
            compare = nil
            worker.shadowCopyFinished(side, completed: labelled == .completed, counted: labelled == .completed || labelled == .failed)
        }
    }
}

/// A connection to a shadow endpoint, made by Worker.dial like every upstream connection. It
/// carries one copy at a time, as HAProxy and Envoy do with servers (pipelined copies waited
/// behind each other's answers: a shadow answering in 100 ms got 10 copies a second per
/// connection, and its latency was time queued here). The copy's bytes are written after the
/// batch of events that produced them, its response read and discarded, and the connection
/// kept alive for the next copy.
final class MirrorConnection: Pollable {
    enum State { case connecting, open, closed }
    static let maxPipeline = 1

    unowned(unsafe) let worker: Worker
    let endpointID: Int
    var state: State = .connecting
    /// Copies sent or waiting to be sent, answered from the front.
    var queue: [MirrorCopy] = []
    /// Index in `queue` of the first copy not fully written.
    var sendIndex = 0
    var inBuf = ByteBuffer()
    /// Frames the front copy's response (reset for each copy's method).
    var framer: ResponseFramer
    /// The framer was reset for the front copy.
    var framing = false
    var headDone = false
    var transport = Transport()
    var dirty = false
    /// The shadow asked to close (or answered a copy early): take no more copies.
    var closing = false

    private init(worker: Worker, endpointID: Int) {
        self.worker = worker
        self.endpointID = endpointID
        self.framer = ResponseFramer(limits: worker.settings.responseLimits)
        super.init(loop: worker.loop)
    }

    static func connect(worker: Worker, target: UpstreamTarget) -> MirrorConnection? {
        let c = MirrorConnection(worker: worker, endpointID: target.endpointID)
        guard let (transport, connected) = try? worker.dial(c, target) else { return nil }
        c.transport = transport
        c.state = connected ? .open : .connecting
        worker.loop.setDeadline(c, afterMs: worker.settings.connectMs)
        return c
    }

    /// Whether a new copy may be queued here.
    func canTake(hasBody: Bool) -> Bool {
        guard state != .closed, !closing, queue.count < MirrorConnection.maxPipeline else { return false }
        if let last = queue.last, !last.bodyComplete { return false }
        return !hasBody || queue.isEmpty
    }

    func enqueue(_ c: MirrorCopy) {
        if queue.isEmpty && state == .open { loop.setDeadline(self, afterMs: worker.settings.responseMs) }
        c.sent = 0
        c.connection = self
        // The shadow's latency counts from here, not from when the copy was made.
        c.compare?.startNs = Sys.monotonicNs()
        queue.append(c)
        markDirty()
    }

    func markDirty() {
        if !dirty {
            dirty = true
            worker.mirrorDirty.append(self)
        }
    }

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        switch state {
        case .connecting:
            guard events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 else { return }
            if Dialer.connectError(transport) != nil {
                worker.mirrorEndpointFailed(endpointID)
                failAll()
                return
            }
            state = .open
            transport.canWrite = true
            if queue.isEmpty { loop.setDeadline(self, afterMs: worker.settings.upstreamIdleMs) } else {
                loop.setDeadline(self, afterMs: worker.settings.responseMs)
            }
            flush()
            if transport.canRead { readResponses() }
        case .open:
            if transport.canWrite && sendIndex < queue.count { flush() }
            if transport.canRead { readResponses() }
        case .closed:
            break
        }
    }

    override func timerFired(now: UInt64) {
        switch state {
        case .connecting:
            worker.mirrorEndpointFailed(endpointID)
            for c in queue { c.compare?.timedOut = true }
            failAll()
        case .open:
            if queue.isEmpty { close() } else {   // idle too long, or no answer in time
                for c in queue { c.compare?.timedOut = true }
                failAll()
            }
        case .closed:
            break
        }
    }

    /// Writes every queued byte it can, many copies per syscall.
    func flush() {
        dirty = false
        guard state == .open else { return }
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 16) { iov in
            while transport.canWrite && sendIndex < queue.count {
                var n = 0
                var i = sendIndex
                while i < queue.count && n < 16 {
                    let c = queue[i]
                    let left = c.data.readableCount - c.sent
                    if left > 0 {
                        iov[n] = iovec(iov_base: c.data.readPointer + c.sent, iov_len: left)
                        n += 1
                    }
                    if !c.bodyComplete { break }   // nothing may follow a body still streaming
                    i += 1
                }
                if n == 0 { return }
                let r: IOResult
                do { r = try transport.write(iov.baseAddress!, count: n) } catch {
                    connectionLost()
                    return
                }
                switch r {
                case .wouldBlock:
                    break
                case .done(var written):
                    while written > 0 && sendIndex < queue.count {
                        let c = queue[sendIndex]
                        let take = min(written, c.data.readableCount - c.sent)
                        c.sent += take
                        written -= take
                        if c.fullySent { sendIndex += 1 } else if take == 0 { break }
                    }
                    while sendIndex < queue.count && queue[sendIndex].fullySent { sendIndex += 1 }
                }
            }
        }
    }

    private func readResponses() {
        while transport.canRead && state == .open {
            let space = inBuf.roomToRead(capacity: headDone ? worker.buffers.blockSize : worker.headRoom(for: inBuf), pool: worker.buffers)
            guard space > 0 else { failAll(); return }
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch {
                connectionLost()
                return
            }
            switch r {
            case .wouldBlock:
                break
            case .done(0):
                // A body delimited by the close is complete now.
                if headDone && framer.endOfStream(), let front = queue.first {
                    answered(front)
                    if state != .open { return }
                }
                connectionLost()
                return
            case .done:
                if !parseResponses() { return }
            }
        }
        if inBuf.isEmpty { inBuf.release(to: worker.buffers) }
    }

    /// Consumes every complete response buffered; false when the connection ended.
    private func parseResponses() -> Bool {
        while !inBuf.isEmpty {
            guard let front = queue.first else {
                // Bytes nobody asked for: this connection cannot be trusted any more.
                close()
                return false
            }
            if !framing {
                framer.reset(requestMethod: front.method)
                framing = true
            }
            switch framer.feed(inBuf.readableBytes) {
            case .needMore:
                return true
            case .failed:
                failAll()
                return false
            case .interim(let length):
                inBuf.consume(length)
            case .head(let length):
                inBuf.consume(length)
                headDone = true
                // Not kept alive, or ending at the close: take nothing more here.
                if !framer.head.keepAlive || framer.head.framing == .untilClose { closing = true }
                if framer.isComplete {
                    answered(front)
                    if state != .open { return false }
                }
            case .body(let count, let complete):
                if let side = front.compare, side.spec.bodyHash {
                    side.hash = BodyHash.fold(side.hash, UnsafeRawBufferPointer(rebasing: inBuf.readableBytes.prefix(count)))
                }
                inBuf.consume(count)
                if complete {
                    answered(front)
                    if state != .open { return false }
                } else if count == 0 {
                    return true
                }
            }
        }
        return true
    }

    /// The front copy's response is complete.
    private func answered(_ c: MirrorCopy) {
        headDone = false
        framing = false
        queue.removeFirst()
        if sendIndex > 0 { sendIndex -= 1 }
        // Answered before it was wholly sent: the shadow may read the rest as a new request.
        if !c.fullySent { closing = true }
        c.compare?.status = framer.head.status
        worker.endpointSucceeded(endpointID)
        c.finish(.mirrorsCompleted)
        if closing {
            // The shadow announced the close: what it had not answered it never processed.
            connectionLost(announced: true)
            return
        }
        loop.setDeadline(self, afterMs: queue.isEmpty ? worker.settings.upstreamIdleMs : worker.settings.responseMs)
        if queue.isEmpty { worker.mirrorConnectionIdle(self) }
    }

    /// The connection ended: copies not answered go to another connection only when sending
    /// them again cannot make the shadow act twice. After an announced close (`Connection:
    /// close` on an answer) the shadow processes nothing behind that answer, and a copy never
    /// written here cannot have been processed: those always go again. After an unexpected end
    /// a written copy may have been processed: only an idempotent method (RFC 9110 9.2.2) goes
    /// again, once; any other (a POST, a PATCH) fails rather than reach the shadow twice.
    private func connectionLost(announced: Bool = false) {
        let pending = queue
        queue.removeAll()
        sendIndex = 0
        close()
        for c in pending {
            c.connection = nil
            if c.finished { continue }
            let unprocessed = announced || c.sent == 0
            if unprocessed {
                worker.dispatchMirror(c)
            } else if !c.retried && c.method.isIdempotent {
                c.retried = true
                worker.dispatchMirror(c)
            } else {
                c.finish(.mirrorsFailed)
            }
        }
    }

    private func failAll() {
        let pending = queue
        queue.removeAll()
        sendIndex = 0
        close()
        for c in pending { c.finish(.mirrorsFailed) }
    }

    /// `c` is being cancelled: a partly sent copy poisons the connection.
    func cancelInFlight(_ c: MirrorCopy) {
        guard let i = queue.firstIndex(where: { $0 === c }) else { return }
        if i >= sendIndex && c.sent == 0 {
            queue.remove(at: i)
            if queue.isEmpty && state == .open { worker.mirrorConnectionIdle(self) }
            return
        }
        queue.remove(at: i)
        if i < sendIndex { sendIndex -= 1 }
        connectionLost()
    }

    var isIdle: Bool { queue.isEmpty && state == .open }

    func close() {
        guard state != .closed else { return }
        state = .closed
        if fd >= 0 {
            loop.close(self)
            transport.closed()
        }
        inBuf.release(to: worker.buffers)
        worker.removeMirrorConnection(self)
    }
}
