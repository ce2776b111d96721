// A client connection's state machine: read a request head, route it, forward the request to
// an upstream connection and relay the response back, one exchange at a time (pipelined
// requests wait in the socket until the previous response is done).
import Glibc
import HTTP1
import Reactor
import Routing

final class ClientConnection: Pollable {
    enum Phase { case waiting, head, exchange, tunnel, closing }
    enum BodyMode { case none, length, chunked, tunnel }

    unowned(unsafe) let worker: Worker
    let listenerIndex: Int
    var slot = -1
    var phase: Phase = .waiting

    var inBuf = ByteBuffer()
    /// Bytes for the client that the proxy produced: response heads, error answers.
    var out = ByteBuffer()
    var parser: RequestParser
    var head = RequestHead()
    var canRead = false
    var canWrite = true
    /// The peer's FIN (or a hang-up) was reported: reading continues until it is seen.
    var peerFinished = false
    private var readingBody = false
    private var inReadHead = false
    private var nextHeadWanted = false
    var clientIP: [UInt8] = []

    // The exchange in progress.
    var upstream: UpstreamConnection?
    /// The request head serialized for the upstream; kept until the response starts so a
    /// failed attempt can be replayed on another endpoint.
    var upHead = ByteBuffer()
    var upHeadSent = 0
    /// Bytes at `inBuf.reader` that belong to the request body and may go upstream.
    var ready = 0
    var bodyMode: BodyMode = .none
    var bodyRemaining: Int64 = 0
    var chunked = ChunkedDecoder()
    var requestComplete = true
    var bodyBytesSent: Int64 = 0
    var keepAlive = true
    var isHTTP10 = false
    var method: HTTP1.Method = .get
    var responseStarted = false
    /// The response is wholly in `out` / the upstream's ready bytes; done once flushed.
    var responseQueued = false
    var snapshot: Snapshot?
    var decision = Decision()
    var tried: UInt64 = 0
    /// The balancer index of the endpoint the current attempt went to.
    var lastPick = -1
    var attempts = 0
    var mirrors: MirrorFanout?

    init(worker: Worker, listener: Int) {
        self.worker = worker
        self.listenerIndex = listener
        self.secure = worker.settings.secureListeners.contains(listener)
        self.parser = RequestParser(limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    /// The listener speaks TLS (X-Forwarded-Proto, Secure cookies); looked up once.
    let secure: Bool

    func start() {
        if let peer = Sys.peerAddress(fd) { clientIP = Array(peer.host.utf8) }
        worker.stats.add(.activeClients)
        loop.setDeadline(self, afterMs: worker.settings.idleMs)
    }

    // MARK: events

    override func handleEvents(_ events: UInt32) {
        if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 { canRead = true }
        if events & (PollEvents.peerClosed | PollEvents.hangUp) != 0 { peerFinished = true }
        if events & PollEvents.output != 0 { canWrite = true }
        if canWrite && hasPendingOutput { flush() }
        if fd >= 0 && canRead { onReadable() }
    }

    var hasPendingOutput: Bool {
        guard let u = upstream else { return !out.isEmpty }
        return !out.isEmpty || u.ready > 0 || u.pipe != nil
    }

    private func onReadable() {
        switch phase {
        case .waiting, .head: readHead()
        case .exchange:
            if bodyMode != .none && !requestComplete { readBody() }
        case .tunnel: readBody()
        case .closing: discardInput()
        }
    }

    override func timerFired(now: UInt64) {
        switch phase {
        case .waiting:
            close()
        case .head:
            worker.stats.add(.clientTimeouts)
            respondLocally(status: 408, detail: "the request head did not arrive in time", close: true)
        case .exchange:
            // A request body that stopped arriving.
            worker.stats.add(.clientTimeouts)
            if responseStarted { abort() } else {
                dropUpstream()
                respondLocally(status: 408, detail: "the request body did not arrive in time", close: true)
            }
        case .tunnel, .closing:
            abort()
        }
    }

    // MARK: reading the head

    private func readHead() {
        // An exchange the proxy answers itself (404, 413...) finishes inside parseHead and asks
        // for the next head from there: the outermost call takes it, so a long pipeline does not
        // nest one call per request.
        if inReadHead {
            nextHeadWanted = true
            return
        }
        inReadHead = true
        defer { inReadHead = false }
        repeat {
            nextHeadWanted = false
            readHeadOnce()
        } while nextHeadWanted && fd >= 0 && phase == .waiting
    }

    private func readHeadOnce() {
        // A pipelined head may already be buffered.
        if !inBuf.isEmpty && parseHead() { return }
        let need = worker.settings.limits.maxHeadBytes + 1
        while canRead && fd >= 0 {
            let space = inBuf.roomToRead(capacity: need, pool: worker.buffers)
            if space == 0 {
                respondLocally(status: 431, detail: "request head too large", close: true)
                return
            }
            let r: IOResult
            do { r = try Sys.read(fd, inBuf.writePointer, space) } catch {
                close()
                return
            }
            switch r {
            case .wouldBlock:
                canRead = false
            case .done(0):
                close()
                return
            case .done(let n):
                inBuf.writer += n
                // A short read drained the socket; edge-triggered epoll reports new data. Not
                // a close, though, when it came with the data: that end-of-stream is read next.
                if n < space && !peerFinished { canRead = false }
                if parseHead() { return }
            }
        }
        if inBuf.isEmpty { inBuf.release(to: worker.buffers) }
    }

    /// Parses what is buffered; true when it started an exchange or answered an error.
    private func parseHead() -> Bool {
        if head.headers.capacity == 0 { head.headers.reserveCapacity(24) }
        let status = parser.parse(inBuf.readableBytes, into: &head)
        switch status {
        case .incomplete:
            // The head timer starts with the first partial head: a head that arrives whole
            // (nearly every request) never costs a timer-wheel entry.
            if phase == .waiting {
                phase = .head
                loop.setDeadline(self, afterMs: worker.settings.headerMs)
            }
            return false
        case .failed(let e):
            keepAlive = false
            respondLocally(status: e.status, detail: e.reason, close: true)
            return true
        case .complete:
            startExchange()
            return true
        }
    }

    // MARK: the exchange

    private func startExchange() {
        worker.stats.add(.requests)
        phase = .exchange
        loop.clearDeadline(self)
        method = head.method
        isHTTP10 = head.version == .http10
        keepAlive = head.keepAlive && !worker.draining
        responseStarted = false
        responseQueued = false
        tried = 0
        attempts = 0
        bodyBytesSent = 0
        ready = 0
        upHeadSent = 0

        switch head.framing {
        case .contentLength(let n):
            let limit = worker.settings.maxBodyBytes
            if limit > 0 && n > limit {
                respondLocally(status: 413, detail: "request body too large", close: true)
                return
            }
            bodyMode = n > 0 ? .length : .none
            bodyRemaining = n
            requestComplete = n == 0
        case .chunked:
            bodyMode = .chunked
            chunked.reset()
            requestComplete = false
        case .none, .untilClose:
            bodyMode = .none
            requestComplete = true
        }
        if head.method == .connect {
            respondLocally(status: 501, detail: "CONNECT is not supported", close: true)
            return
        }

        let snap = worker.currentSnapshot()
        snapshot = snap
        let headBytes = UnsafeRawBufferPointer(start: inBuf.readPointer, count: Int(head.headLength))
        let view = RequestView(bytes: headBytes, head: head)
        decision = decide(snap, view, random: worker.nextRandom())
        worker.countRequest(decision)
        if decision.route < 0 {
            worker.stats.add(.noRoute)
            if !requestComplete { keepAlive = false }
            // Answered here: drop the head, or the kept-alive connection would parse it again
            // and answer it forever.
            inBuf.consume(Int(head.headLength))
            parser.reset()
            respondLocally(status: 404, detail: "no route matches this request", close: !keepAlive)
            return
        }
        let requestID = worker.nextRandom()
        upHead.release(to: worker.buffers)
        HeadWriter.writeRequest(view, snapshot: snap, decision: decision, clientIP: clientIP, secure: secure,
                                requestID: requestID, shadow: false, hostSuffix: nil, into: &upHead, pool: worker.buffers)
        if decision.mirrorMask != 0 {
            mirrors = MirrorFanout.start(worker: worker, snapshot: snap, decision: decision, view: view, clientIP: clientIP, secure: secure, requestID: requestID,
                                         bodyMode: bodyMode, contentLength: bodyRemaining)
        }
        if head.upgrade { bodyMode = .tunnel; requestComplete = false }
        inBuf.consume(Int(head.headLength))
        parser.reset()
        classifyBody()
        if phase != .exchange { return }
        connectUpstream()
    }

    /// Marks newly buffered body bytes as ready to forward, finding where the body ends.
    private func classifyBody() {
        let unclassified = inBuf.readableCount - ready
        guard unclassified > 0 else { return }
        switch bodyMode {
        case .none:
            return
        case .tunnel:
            ready = inBuf.readableCount
        case .length:
            let take = Int(min(Int64(unclassified), bodyRemaining))
            mirrors?.copyBody(UnsafeRawBufferPointer(start: inBuf.readPointer + ready, count: take))
            ready += take
            bodyRemaining -= Int64(take)
            if bodyRemaining == 0 { requestComplete = true }
        case .chunked:
            let bytes = UnsafeRawBufferPointer(start: inBuf.readPointer + ready, count: unclassified)
            switch chunked.consume(bytes) {
            case .needMore(let n):
                mirrors?.copyBody(bytes.slice(0, n))
                ready += n
            case .done(let n):
                mirrors?.copyBody(bytes.slice(0, n))
                ready += n
                requestComplete = true
            case .failed(let e):
                requestFramingFailed(e.status, e.reason)
                return
            }
            let limit = worker.settings.maxBodyBytes
            if limit > 0 && chunked.payloadBytes > limit {
                requestFramingFailed(413, "request body too large")
                return
            }
        }
        if requestComplete { mirrors?.bodyComplete() }
    }

    private func requestFramingFailed(_ status: Int, _ reason: StaticString) {
        mirrors?.abandon()
        mirrors = nil
        if responseStarted { abort(); return }
        dropUpstream()
        respondLocally(status: status, detail: reason, close: true)
    }

    private func readBody() {
        readingBody = true
        defer { readingBody = false }
        while canRead && fd >= 0 && (phase == .tunnel || (phase == .exchange && !requestComplete)) {
            let space = inBuf.roomToRead(capacity: worker.buffers.blockSize, pool: worker.buffers)
            if space == 0 { return }   // full of bytes the upstream has not taken yet
            let r: IOResult
            do { r = try Sys.read(fd, inBuf.writePointer, space) } catch {
                abort()
                return
            }
            switch r {
            case .wouldBlock:
                canRead = false
            case .done(0):
                if phase == .tunnel {
                    tunnelClosed()
                } else {
                    // The client gave up mid-body.
                    abort()
                }
                return
            case .done(let n):
                inBuf.writer += n
                // A short read drained the socket; edge-triggered epoll reports new data. Not
                // a close, though, when it came with the data: that end-of-stream is read next.
                if n < space && !peerFinished { canRead = false }
                if phase == .exchange && !requestComplete { loop.setDeadline(self, afterMs: worker.settings.idleMs) }
                classifyBody()
                if fd < 0 || (phase != .exchange && phase != .tunnel) { return }
                upstream?.flushRequest()
            }
        }
    }

    /// The upstream took some body bytes: there may be room to read more.
    func requestBytesTaken() {
        // Not from inside readBody (its flushRequest got here): that loop reads on by itself,
        // and re-entering it once per block would nest as deep as the body is long.
        if readingBody { return }
        if canRead && (phase == .tunnel || (phase == .exchange && !requestComplete)) { readBody() }
    }

    private func discardInput() {
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while canRead && fd >= 0 {
            let r = withUnsafeMutableBytes(of: &scratch) { raw in try? Sys.read(fd, raw.baseAddress!, raw.count) }
            switch r {
            case .none, .some(.done(0)): close(); return
            case .some(.wouldBlock): canRead = false
            case .some(.done): continue
            }
        }
    }

    // MARK: upstream selection

    func connectUpstream() {
        while true {
            attempts += 1
            guard attempts <= 8, let pick = worker.pickEndpoint(upstream: decision.upstream, color: decision.color, tried: tried) else {
                let noneAtAll = tried == 0
                respondLocally(status: noneAtAll ? 503 : 502,
                               detail: noneAtAll ? "no endpoint available" : "upstream unreachable",
                               close: !requestComplete || ready > 0 || !keepAlive)
                return
            }
            if pick.index < 64 { tried |= 1 << UInt64(pick.index) }
            lastPick = pick.index
            guard let u = worker.acquireUpstream(pick.endpoint) else {
                worker.stats.add(.upstreamConnectFailures)
                continue
            }
            upstream = u
            u.attach(self)
            return
        }
    }

    /// An attempt failed before any response byte. Retried on another endpoint when nothing of
    /// the body was sent; otherwise a 502.
    func upstreamFailed(_ u: UpstreamConnection, retryable: Bool, timeout: Bool) {
        guard upstream === u else { return }
        upstream = nil
        if responseStarted {
            abort()
            return
        }
        if retryable && bodyBytesSent == 0 {
            worker.stats.add(.upstreamRetries)
            upHeadSent = 0
            // A pooled connection the upstream had already closed says nothing against the
            // endpoint: it stays eligible, for a fresh connection (`attempts` bounds the loop).
            if u.reused && lastPick >= 0 && lastPick < 64 { tried &= ~(1 << UInt64(lastPick)) }
            connectUpstream()
            return
        }
        respondLocally(status: timeout ? 504 : 502,
                       detail: timeout ? "upstream timed out" : "upstream connection failed",
                       close: !requestComplete || ready > 0 || !keepAlive)
    }

    /// The upstream's response head is parsed: send ours, then relay the body.
    func responseHeadArrived(_ u: UpstreamConnection, _ bytes: UnsafeRawBufferPointer, _ rh: ResponseHead) {
        responseStarted = true
        upHead.release(to: worker.buffers)
        upHeadSent = 0
        let status = rh.status
        worker.stats.countResponse(status: status)
        // Only a close-delimited body ends the client's connection; the upstream's own
        // "Connection: close" (always sent to the HTTP/1.0 requests we forward) is about its hop.
        if rh.framing == .untilClose { keepAlive = false }
        let upgrading = status == 101 && head.upgrade
        worker.withVariantLine(decision) { line in
            HeadWriter.writeResponse(bytes, rh, keepAlive: keepAlive && (requestComplete || upgrading), clientHTTP10: isHTTP10,
                                     variantLine: line, snapshot: snapshot, decision: decision, secure: secure,
                                     into: &out, pool: worker.buffers)
        }
        if !requestComplete && !upgrading {
            // The upstream answered before the whole body arrived: the rest of the body would
            // be read as the next request, so this connection ends with the response.
            keepAlive = false
        }
        if upgrading {
            phase = .tunnel
            bodyMode = .tunnel
            ready = inBuf.readableCount
        }
    }

    func interimArrived(_ bytes: UnsafeRawBufferPointer, _ rh: ResponseHead) {
        HeadWriter.writeInterim(bytes, rh, into: &out, pool: worker.buffers)
        flush()
    }

    /// Every byte of the response is queued (in `out` or the upstream's ready bytes).
    func responseComplete() {
        responseQueued = true
        flush()
    }

    // MARK: writing

    func flush() {
        guard fd >= 0 else { return }
        while canWrite {
            let u = upstream
            let outLen = out.readableCount
            let bodyLen = u?.ready ?? 0
            if outLen == 0 && bodyLen == 0 { break }
            let r: IOResult
            do {
                r = try Sys.writev2(fd, outLen > 0 ? UnsafeRawPointer(out.readPointer) : nil, outLen,
                                    bodyLen > 0 ? UnsafeRawPointer(u!.inBuf.readPointer) : nil, bodyLen)
            } catch {
                abort()
                return
            }
            switch r {
            case .wouldBlock:
                canWrite = false
            case .done(let n):
                let fromOut = min(n, outLen)
                if fromOut > 0 { out.consume(fromOut) }
                let fromBody = n - fromOut
                if fromBody > 0, let u {
                    u.inBuf.consume(fromBody)
                    u.ready -= fromBody
                }
            }
        }
        if out.isEmpty { out.releaseIfEmpty(to: worker.buffers) }
        if let u = upstream, u.pipe != nil {
            if canWrite && out.isEmpty { u.pumpSplice() }
            if fd < 0 { return }
        } else if let u = upstream, u.ready == 0 { u.responseBytesTaken() }
        if phase == .closing && out.isEmpty { close(); return }
        if responseQueued && out.isEmpty && (upstream?.ready ?? 0) == 0 { finishExchange() }
        else if phase == .exchange && responseStarted && canWrite == false {
            loop.setDeadline(self, afterMs: worker.settings.idleMs)
        }
    }

    private func finishExchange() {
        responseQueued = false
        if let u = upstream {
            upstream = nil
            u.exchangeFinished(reusable: requestComplete && ready == 0)
        }
        if let m = mirrors { mirrors = nil; m.primaryDone() }
        upHead.release(to: worker.buffers)
        snapshot = nil
        if !keepAlive || worker.draining {
            close()
            return
        }
        phase = .waiting
        bodyMode = .none
        requestComplete = true
        ready = 0
        if inBuf.isEmpty {
            inBuf.release(to: worker.buffers)
            // An idle connection keeps no per-request memory: the header index is rebuilt
            // (one allocation) by the next request.
            head.headers = []
        }
        loop.setDeadline(self, afterMs: worker.settings.idleMs)
        if !inBuf.isEmpty || canRead { readHead() }
    }

    /// Answers from the proxy itself. `close` ends the connection after the answer.
    func respondLocally(status: Int, detail: StaticString, close shouldClose: Bool) {
        if responseStarted { abort(); return }
        if let m = mirrors { mirrors = nil; m.abandon() }
        worker.stats.countResponse(status: status)
        let closing = shouldClose || !keepAlive || worker.draining
        HeadWriter.writeError(status: status, detail: detail, close: closing, into: &out, pool: worker.buffers)
        responseStarted = true
        if closing {
            keepAlive = false
            phase = .closing
            upHead.release(to: worker.buffers)
            loop.setDeadline(self, afterMs: min(worker.settings.idleMs, 5_000))
            flush()
        } else {
            phase = .exchange
            responseQueued = true
            flush()
        }
    }

    private func dropUpstream() {
        if let u = upstream {
            upstream = nil
            u.abandon()
        }
    }

    // MARK: tunnel

    func tunnelClosed() {
        // Either side of a tunnel closed: deliver what is buffered, then end both.
        dropUpstream()
        phase = .closing
        flush()
    }

    // MARK: shutdown

    /// Graceful drain: an idle connection closes now; a busy one after its response.
    func drain() {
        if phase == .waiting { close() } else { keepAlive = false }
    }

    func abort() {
        if let m = mirrors { mirrors = nil; m.abandon() }
        dropUpstream()
        close()
    }

    func close() {
        guard fd >= 0 else { return }
        if let m = mirrors { mirrors = nil; m.abandon() }
        dropUpstream()
        loop.close(self)
        inBuf.release(to: worker.buffers)
        out.release(to: worker.buffers)
        upHead.release(to: worker.buffers)
        worker.stats.sub(.activeClients)
        snapshot = nil
        worker.remove(self)
    }
}
