// Shadow copies of a request. Each copy is its own request on the shadow upstream's own
// connection pool; its response is read and thrown away. The primary never waits for a copy:
// copies in flight are capped per shadow upstream, bodies are copied only up to the mirror's
// maxBodyBytes, and a copy that cannot keep up is dropped and counted, never queued.
import HTTP1
import Reactor
import Routing

/// Per shadow upstream: how many copies this worker has in flight, and when its endpoints may
/// be tried again after a connect failure.
final class MirrorGate {
    let cap: Int
    var inFlight = 0
    init(cap: Int) { self.cap = cap }
}

/// The copies made of one primary request.
final class MirrorFanout {
    private var copies: [MirrorCopy]

    private init(copies: [MirrorCopy]) { self.copies = copies }

    static func start(worker: Worker, snapshot: Snapshot, decision: Decision, view: RequestView,
                      clientIP: [UInt8], secure: Bool, requestID: UInt64,
                      bodyMode: ClientConnection.BodyMode, contentLength: Int64) -> MirrorFanout? {
        var copies: [MirrorCopy] = []
        var bits = decision.mirrorMask
        let mirrors = snapshot.routes[decision.route].mirrors
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            bits &= bits - 1
            guard i < mirrors.count else { break }
            let m = mirrors[i]
            if bodyMode == .tunnel || view.head.upgrade { continue }
            if bodyMode == .length && contentLength > Int64(m.maxBodyBytes) {
                worker.stats.add(.mirrorsSkippedBody)
                continue
            }
            let gate = worker.mirrorGate(upstream: m.upstream)
            guard gate.inFlight < gate.cap else {
                worker.stats.add(.mirrorsDropped)
                continue
            }
            guard let pick = worker.pickEndpoint(upstream: m.upstream, color: worker.liveColor(upstream: m.upstream), tried: 0),
                  let conn = worker.acquireMirrorConnection(pick.endpoint) else {
                worker.stats.add(.mirrorsFailed)
                continue
            }
            let copy = MirrorCopy(worker: worker, gate: gate, maxBodyBytes: m.maxBodyBytes,
                                  bodyExpected: bodyMode != .none, method: view.head.method)
            HeadWriter.writeRequest(view, snapshot: snapshot, decision: decision, clientIP: clientIP, secure: secure, requestID: requestID,
                                    shadow: true, hostSuffix: m.hostSuffix, into: &copy.data, pool: worker.buffers)
            gate.inFlight += 1
            worker.stats.add(.mirrorsSent)
            conn.send(copy)
            // A copy without a body is complete once sent: the fanout need not follow it.
            if bodyMode != .none { copies.append(copy) }
        }
        return copies.isEmpty ? nil : MirrorFanout(copies: copies)
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

/// One shadow request: its bytes and its outcome.
final class MirrorCopy {
    unowned(unsafe) let worker: Worker
    let gate: MirrorGate
    let maxBodyBytes: Int
    let method: HTTP1.Method
    var data = ByteBuffer()
    var bodyBytes = 0
    private(set) var bodyComplete: Bool
    var finished = false
    weak var connection: MirrorConnection?

    init(worker: Worker, gate: MirrorGate, maxBodyBytes: Int, bodyExpected: Bool, method: HTTP1.Method) {
        self.worker = worker
        self.gate = gate
        self.maxBodyBytes = maxBodyBytes
        self.bodyComplete = !bodyExpected
        self.method = method
    }

    func appendBody(_ bytes: UnsafeRawBufferPointer) {
        guard !finished else { return }
        if bodyBytes + bytes.count > maxBodyBytes {
            worker.stats.add(.mirrorsSkippedBody)
            cancel()
            return
        }
        bodyBytes += bytes.count
        data.append(bytes, pool: worker.buffers)
        connection?.flush()
    }

    func bodyDone() {
        bodyComplete = true
        connection?.flush()
    }

    /// Ends the copy without an answer (counted by the caller or here as failed).
    func cancel() {
        guard !finished else { return }
        connection?.abandon()
        finish(ok: false)
    }

    func finish(ok: Bool) {
        guard !finished else { return }
        finished = true
        gate.inFlight -= 1
        worker.stats.add(ok ? .mirrorsCompleted : .mirrorsFailed)
        data.release(to: worker.buffers)
    }
}

/// A connection to a shadow endpoint: sends copies, reads their responses and discards them.
final class MirrorConnection: Pollable {
    enum State { case connecting, active, idle, closed }

    unowned(unsafe) let worker: Worker
    let endpointID: Int
    var state: State = .connecting
    var copy: MirrorCopy?
    var inBuf = ByteBuffer()
    var parser: ResponseParser
    var head = ResponseHead()
    var headDone = false
    var remaining: Int64 = 0
    var chunkedBody = false
    var untilClose = false
    var chunked = ChunkedDecoder()
    var canWrite = false
    var canRead = false
    var reusable = true

    private init(worker: Worker, endpointID: Int) {
        self.worker = worker
        self.endpointID = endpointID
        self.parser = ResponseParser(limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    static func connect(worker: Worker, endpointID: Int, address: SocketAddress) -> MirrorConnection? {
        guard let fd = try? Sys.socket(family: address.family) else { return nil }
        let connected: Bool
        do { connected = try Sys.connect(fd, address) } catch {
            Sys.close(fd)
            return nil
        }
        Sys.setNoDelay(fd)
        let c = MirrorConnection(worker: worker, endpointID: endpointID)
        do { try worker.loop.register(c, fd: fd) } catch {
            Sys.close(fd)
            return nil
        }
        c.state = connected ? .active : .connecting
        c.canWrite = connected
        if !connected { worker.loop.setDeadline(c, afterMs: worker.settings.connectMs) }
        return c
    }

    var isUsable: Bool { state == .idle && fd >= 0 }

    func send(_ c: MirrorCopy) {
        copy = c
        c.connection = self
        headDone = false
        parser.reset()
        reusable = true
        if state == .idle {
            state = .active
            canWrite = true
        }
        worker.loop.setDeadline(self, afterMs: state == .connecting ? worker.settings.connectMs : worker.settings.responseMs)
        flush()
    }

    override func handleEvents(_ events: UInt32) {
        if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 { canRead = true }
        if events & PollEvents.output != 0 { canWrite = true }
        switch state {
        case .connecting:
            guard events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 else { return }
            if Sys.socketError(fd) != 0 {
                worker.mirrorEndpointFailed(endpointID)
                fail()
                return
            }
            state = .active
            canWrite = true
            worker.loop.setDeadline(self, afterMs: worker.settings.responseMs)
            flush()
            if canRead { readResponse() }
        case .active:
            if canWrite { flush() }
            if canRead { readResponse() }
        case .idle:
            if canRead {
                worker.removeMirrorFromPool(self)
                close()
            }
        case .closed:
            break
        }
    }

    override func timerFired(now: UInt64) {
        switch state {
        case .connecting:
            worker.mirrorEndpointFailed(endpointID)
            fail()
        case .active:
            fail()
        case .idle:
            worker.removeMirrorFromPool(self)
            close()
        case .closed:
            break
        }
    }

    func flush() {
        guard state == .active, let c = copy else { return }
        while canWrite && !c.data.isEmpty {
            let r: IOResult
            do { r = try Sys.write(fd, c.data.readPointer, c.data.readableCount) } catch {
                fail()
                return
            }
            switch r {
            case .wouldBlock: canWrite = false
            case .done(let n): c.data.consume(n)
            }
        }
        if c.data.isEmpty { c.data.releaseIfEmpty(to: worker.buffers) }
    }

    private func readResponse() {
        while canRead && state == .active {
            if !inBuf.hasStorage { inBuf.reserve(worker.settings.limits.maxHeadBytes + 1, pool: worker.buffers) }
            if headDone { inBuf.reader = 0; inBuf.writer = 0 }   // body bytes are only counted
            if inBuf.writableCount == 0 && inBuf.reader > 0 { inBuf.compact() }
            guard inBuf.writableCount > 0 else { fail(); return }
            let r: IOResult
            do { r = try Sys.read(fd, inBuf.writePointer, inBuf.writableCount) } catch {
                fail()
                return
            }
            switch r {
            case .wouldBlock:
                canRead = false
            case .done(0):
                if headDone && untilClose { succeed(reuse: false) } else { fail() }
                return
            case .done(let n):
                inBuf.writer += n
                if !headDone {
                    guard let method = copy?.method else { fail(); return }
                    switch parser.parse(inBuf.readableBytes, requestMethod: method, into: &head) {
                    case .incomplete: continue
                    case .failed: fail(); return
                    case .complete:
                        inBuf.consume(Int(head.headLength))
                        parser.reset()
                        if head.status >= 100 && head.status < 200 { continue }
                        headDone = true
                        reusable = head.keepAlive
                        chunkedBody = false
                        untilClose = false
                        remaining = 0
                        switch head.framing {
                        case .none: break
                        case .contentLength(let n): remaining = n
                        case .chunked:
                            chunkedBody = true
                            chunked.reset()
                        case .untilClose: untilClose = true
                        }
                    }
                }
                if headDone && consumeBody() { return }
            }
        }
    }

    /// Skips body bytes; true when the response ended (and the copy was finished).
    private func consumeBody() -> Bool {
        let bytes = inBuf.readableBytes
        if chunkedBody {
            switch chunked.consume(bytes) {
            case .needMore: inBuf.consume(bytes.count); return false
            case .done(let n):
                inBuf.consume(n)
                succeed(reuse: reusable && inBuf.isEmpty)
                return true
            case .failed:
                fail()
                return true
            }
        }
        if untilClose {
            inBuf.consume(bytes.count)
            return false
        }
        let take = Int(min(Int64(bytes.count), remaining))
        remaining -= Int64(take)
        inBuf.consume(take)
        if remaining == 0 {
            succeed(reuse: reusable && inBuf.isEmpty)
            return true
        }
        return false
    }

    private func succeed(reuse: Bool) {
        let c = copy
        // A shadow may answer before the copy's body is all sent (a 401 for an upload): the
        // connection is then mid-request and carries no further copy.
        let sentWhole = c.map { $0.bodyComplete && $0.data.isEmpty } ?? false
        copy = nil
        c?.connection = nil
        c?.finish(ok: true)
        if reuse && sentWhole && fd >= 0 && !worker.draining {
            inBuf.release(to: worker.buffers)
            state = .idle
            worker.returnMirrorToPool(self)
        } else {
            close()
        }
    }

    private func fail() {
        let c = copy
        copy = nil
        c?.connection = nil
        close()
        c?.finish(ok: false)
    }

    /// The copy was cancelled: this connection is mid-request and cannot be reused.
    func abandon() {
        copy = nil
        close()
    }

    func close() {
        if fd >= 0 { loop.close(self) }
        inBuf.release(to: worker.buffers)
        state = .closed
    }
}
