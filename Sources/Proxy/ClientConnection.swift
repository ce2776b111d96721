// A client connection's state machine: read a request head, route it, pick an upstream
// connection for it (retrying another endpoint when an attempt fails before the response),
// and answer what the proxy answers itself. One exchange at a time: pipelined requests wait
// in the socket until the previous response is done. The bytes themselves flow through the
// relay; what the request was and how it ended is the exchange record.
import Glibc
import HTTP1
import Reactor
import Routing
import TLS

final class ClientConnection: Pollable {
    enum Phase { case waiting, head, exchange, tunnel, closing }

    /// Strong: reading an unowned(unsafe) reference makes a strong copy (a retain and a
    /// release) at every use; through a strong `let` of this object it is borrowed. Measured:
    /// 1,028 fewer instructions per proxied request (17,571 to 16,543, callgrind).
    let worker: Worker
    let listenerIndex: Int
    var slot = -1
    private(set) var phase: Phase = .waiting
    var transport = Transport()

    var inBuf = ByteBuffer()
    private var parser: RequestParser
    private var head = RequestHead()
    private var inReadHead = false
    private var nextHeadWanted = false
    private var readingBody = false
    var clientIP: [UInt8] = []
    private var clientAddress = ClientAddress.unknown
    /// The listener speaks TLS (X-Forwarded-Proto, Secure cookies).
    let secure: Bool
    /// The certificates offered, for a TLS listener; the handshake has not completed.
    private var tlsServer: TLSServer?
    var awaitingHandshake = false

    /// The request in progress (or the last one), and the bytes flowing for it (a relay is lent
    /// by the worker while an exchange runs: nil on an idle connection).
    var exchange = Exchange()
    var relay: Relay!
    private(set) var snapshot: Snapshot?
    /// The response head has been produced (by the upstream or the proxy).
    var responseStarted = false
    /// Queued for a connection slot of its upstream (maxConnections reached).
    var waitingForSlot = false
    /// When the request body must be complete (loop milliseconds; timeouts.bodyMs from the head).
    private var bodyDeadline: UInt64 = 0
    /// The body is being read whole before any upstream is taken (ClientConnectionBuffering).
    var bufferingBody = false
    /// The request goes to a pool that signs it (UpstreamSigning); nil for most.
    var signing: UpstreamSigning?
    /// The start of the exchange's access-log line, when it is sampled (capacity kept).
    private var logPrefix: [UInt8] = []
    /// Counted as a tunnel or a response in progress on its pool (WorkerTunnels.swift).
    var longLived = LongLivedMark()

    init(worker: Worker, listener: Int, tls: TLSServer?) {
        self.worker = worker
        self.listenerIndex = listener
        self.secure = tls != nil
        self.tlsServer = tls
        self.parser = RequestParser(limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    private func acquireRelay() {
        if relay == nil { relay = worker.takeRelay(for: self) }
    }

    private func releaseRelay() {
        if let r = relay {
            relay = nil
            worker.recycle(r)
        }
    }

    var isOpen: Bool { fd >= 0 }

    func start(fd: Int32) {
        transport = Transport(fd: fd, writable: true)
        if let peer = Sys.peerAddress(fd) {
            clientIP = Array(peer.host.utf8)
            clientAddress = ClientAddress(text: clientIP)
        }
        worker.stats.add(.activeClients)
        if let server = tlsServer {
            tlsServer = nil
            guard let session = server.accept(fd: fd, worker: loop.index) else {
                close()
                return
            }
            transport.tls = session
            awaitingHandshake = true
            // The handshake is read like a request head: bounded by its own timeout.
            transport.canRead = true
            loop.setDeadline(self, afterMs: worker.settings.handshakeMs)
            return
        }
        loop.setDeadline(self, afterMs: worker.settings.idleMs)
    }

    // MARK: events

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        if transport.canWrite, let r = relay, r.hasPendingOutput { r.sendToClient() }
        if fd >= 0 && transport.canRead { onReadable() }
        else if awaitingHandshake && fd >= 0 { onReadable() }   // the handshake may wait to write
    }

    private func onReadable() {
        switch phase {
        case .waiting, .head: readHead()
        case .exchange:
            if !relay.requestComplete { readBody() }
        case .tunnel: readBody()
        case .closing: discardInput()
        }
    }

    override func timerFired(now: UInt64) {
        switch phase {
        case .waiting:
            if awaitingHandshake {
                awaitingHandshake = false
                worker.stats.add(.tlsHandshakeTimeouts)
            }
            close()
        case .head:
            worker.stats.add(.clientTimeouts)
            openErrorRecord()
            respondLocally(status: 408, detail: "the request head did not arrive in time", close: true)
        case .exchange where waitingForSlot:
            leaveSlotQueue()
            worker.resilience.count(.pendingTimeouts, upstream: exchange.decision.upstream)
            respondLocally(status: 503, detail: "no connection slot freed in time", close: !relay.requestFullyConsumed || !exchange.keepAlive,
                           retryAfter: true)
        case .exchange:
            // Body bytes the upstream has not taken yet: its stall, bounded by its own timer.
            if relay.requestReady > 0 && !responseStarted && !bufferingBody {
                loop.setDeadline(self, afterMs: worker.settings.idleMs)
                return
            }
            // A request body that stopped arriving: the client's fault, answered 408 and never
            // counted against the endpoint.
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
        while transport.canRead && fd >= 0 {
            let space = inBuf.roomToRead(capacity: need, pool: worker.buffers)
            if space == 0 {
                openErrorRecord()
                respondLocally(status: 431, detail: "request head too large", close: true)
                return
            }
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch {
                if awaitingHandshake { handshakeFailed() }
                close()
                return
            }
            if awaitingHandshake && !transport.handshaking { handshakeDone() }
            switch r {
            case .wouldBlock:
                break
            case .done(0):
                if awaitingHandshake { handshakeFailed() }
                close()
                return
            case .done:
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
            openErrorRecord()
            respondLocally(status: e.status, detail: e.reason, close: true)
            return true
        case .complete:
            startExchange()
            return true
        }
    }

    // MARK: the exchange

    /// A record for a request whose head never parsed (malformed, too large, too slow): the
    /// previous request's, kept alive, must not answer for it. (It did: an error in the second
    /// request on a connection was a silent close instead of its 400.)
    private func openErrorRecord() {
        acquireRelay()
        exchange = Exchange(method: .get, isHTTP10: false, keepAlive: false, headBytes: inBuf.readableCount)
        responseStarted = false
        if let logs = worker.logs, logs.accessEnabled, worker.nextRandom() <= logs.sampleThreshold {
            exchange.logged = true
            logs.writePrefix(into: &logPrefix, client: clientIP, method: nil, path: nil, query: nil, requestID: nil)
        }
    }

    /// Starts the access-log line of a sampled exchange while its head is still in the buffer.
    private func beginLogLine(_ headBytes: UnsafeRawBufferPointer) {
        guard let logs = worker.logs, logs.accessEnabled, worker.nextRandom() <= logs.sampleThreshold else { return }
        exchange.logged = true
        var requestID: UnsafeRawBufferPointer?
        for f in head.headers where f.kind == .xRequestId {
            requestID = f.value(in: headBytes)
            break
        }
        exchange.clientRequestID = requestID != nil
        let path = originPath(headBytes.slice(Int(head.targetStart), Int(head.pathEnd)))
        logs.writePrefix(into: &logPrefix, client: clientIP, method: headBytes.slice(Int(head.methodStart), Int(head.methodEnd)),
                         path: path, query: headBytes.slice(Int(head.pathEnd), Int(head.targetEnd)), requestID: requestID)
    }

    private func startExchange() {
        worker.stats.add(.requests)
        phase = .exchange
        loop.clearDeadline(self)
        let headLength = Int(head.headLength)
        exchange = Exchange(method: head.method, isHTTP10: head.version == .http10,
                            keepAlive: head.keepAlive && !worker.draining, headBytes: headLength)
        responseStarted = false
        let headBytes = UnsafeRawBufferPointer(start: inBuf.readPointer, count: headLength)
        if worker.logs != nil { beginLogLine(headBytes) }
        acquireRelay()
        let relay = self.relay!   // one load (and retain) for the whole function
        relay.beginRequest(framing: head.framing, method: head.method)

        if case .contentLength(let n) = head.framing {
            let limit = worker.settings.maxBodyBytes
            if limit > 0 && n > limit {
                respondLocally(status: 413, detail: "request body too large", close: true)
                return
            }
        }
        if head.method == .connect {
            respondLocally(status: 501, detail: "CONNECT is not supported", close: true)
            return
        }

        let snap = worker.currentSnapshot()
        snapshot = snap
        var view = RequestView(bytes: headBytes, head: head)
        exchange.decision = decide(snap, view, random: worker.nextRandom(), client: clientAddress)
        if head.upgrade && !snap.allowsUpgrade(route: exchange.decision.route, view) {
            head.upgrade = false   // not the route's to tunnel: a plain request, a 101 to it refused
            view = RequestView(bytes: headBytes, head: head)
        }
        worker.countRequest(&exchange)
        let trace = TraceContext.decide(head, headBytes, start: worker.settings.tracing.startWhenMissing) { worker.nextRandom() }
        exchange.traceHi = trace.traceHi
        exchange.traceLo = trace.traceLo
        if exchange.decision.route < 0 {
            worker.stats.add(.noRoute)
            if !relay.requestComplete { exchange.keepAlive = false }
            // Answered here: drop the head, or the kept-alive connection would parse it again
            // and answer it forever.
            inBuf.consume(headLength)
            parser.reset()
            respondLocally(status: 404, detail: "no route matches this request", close: !exchange.keepAlive)
            return
        }
        signing = worker.signing.lookup(upstream: exchange.decision.upstream, color: exchange.decision.color)
        if let s = signing, case .contentLength(let n) = head.framing, n > s.maxBodyBytes {
            signedBodyTooLarge()
            return
        }
        bufferingBody = buffersBody(&head)
        if bufferingBody && head.expectContinue { view = RequestView(bytes: headBytes, head: head) }
        exchange.requestID = worker.nextRandom()
        relay.releaseRequestHead()
        HeadWriter.writeRequest(view, snapshot: snap, decision: exchange.decision, clientIP: clientIP,
                                clientAddress: clientAddress, secure: secure,
                                requestID: exchange.requestID, shadow: false, hostSuffix: nil, trace: trace,
                                hostHeader: snap.hostHeader(upstream: exchange.decision.upstream, color: exchange.decision.color),
                                setHeaders: snap.setHeaders(upstream: exchange.decision.upstream, color: exchange.decision.color),
                                into: &relay.upHead, pool: worker.buffers)
        if let bearer = worker.bearers.lookup(upstream: exchange.decision.upstream, color: exchange.decision.color) {
            worker.bear(&relay.upHead, with: bearer)
        }
        if exchange.decision.mirrorMask != 0 {
            let (fanout, started, outcome) = MirrorFanout.start(worker: worker, snapshot: snap, decision: exchange.decision, view: view,
                                                                clientIP: clientIP, clientAddress: clientAddress, secure: secure,
                                                                requestID: exchange.requestID, trace: trace,
                                                                body: relay.bodyMode, contentLength: relay.contentLength)
            relay.mirrors = fanout
            exchange.mirrorCopies = started
            exchange.mirrorOutcome = outcome
            if started > 0 && !worker.shadow.joins.isEmpty { exchange.hashBody = worker.shadowWantsPrimaryHash(requestID: exchange.requestID) }
        }
        if head.upgrade { relay.beginTunnelAfterHead() }
        inBuf.consume(headLength)
        parser.reset()
        takeBody()
        if phase != .exchange { return }
        // The body's timer runs from the head on: a body that never comes is the client's
        // stall, answered 408, whatever the upstream does meanwhile.
        if !relay.requestComplete && relay.bodyMode != .tunnel {
            bodyDeadline = loop.now &+ worker.settings.bodyMs
            armBodyTimer()
        }
        if bufferingBody && keepsBuffering(expectContinue: head.expectContinue) {
            // The head's read may have stopped with more of the body in the socket: its readiness
            // was reported once (edge-triggered) and no new event comes until it is read. (A body
            // sent in one write with its head stalled until the body timer answered 408.)
            if transport.canRead { readBody() }
            return
        }
        startAttempts()
    }

    /// Newly read bytes that belong to the request body go to the relay (and count as the
    /// request's: body bytes read with the head included, a pipelined next request's not).
    private func takeBody() {
        let before = relay.requestReady
        let failure = relay.takeRequestBody()
        exchange.bytesIn &+= Int64(max(0, relay.requestReady - before))
        if let (status, reason) = failure { requestFramingFailed(status, reason) }
    }

    private func requestFramingFailed(_ status: Int, _ reason: StaticString) {
        relay.abandonMirrors()
        if responseStarted { abort(); return }
        dropUpstream()
        respondLocally(status: status, detail: reason, close: true)
    }

    private func readBody() {
        readingBody = true
        defer { readingBody = false }
        while transport.canRead && fd >= 0 && (phase == .tunnel || (phase == .exchange && !relay.requestComplete)) {
            let space = inBuf.roomToRead(capacity: bufferingBody ? bodyBufferCapacity : worker.buffers.blockSize, pool: worker.buffers)
            if space == 0 { return }   // full of bytes the upstream has not taken yet
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch {
                abort()
                return
            }
            switch r {
            case .wouldBlock:
                break
            case .done(0):
                if phase == .tunnel {
                    tunnelClosed()
                } else {
                    // The client gave up mid-body.
                    abort()
                }
                return
            case .done:
                if phase == .exchange && !relay.requestComplete { armBodyTimer() }
                takeBody()
                if fd < 0 || (phase != .exchange && phase != .tunnel) { return }
                // A whole body ends the client's part: the wait for the answer is the upstream's
                // (responseMs), not a body that "did not arrive in time" (a 408 at idleMs).
                if relay.requestComplete && !responseStarted && !waitingForSlot { loop.clearDeadline(self) }
                if bufferingBody { bufferedBodyGrew() } else { relay.sendToUpstream() }
            }
        }
    }

    /// The body's timer: idleMs to the next bytes, but never past the whole body's deadline.
    private func armBodyTimer() {
        let now = loop.now
        let left = bodyDeadline > now ? bodyDeadline - now : 1
        loop.setDeadline(self, afterMs: min(worker.settings.idleMs, left))
    }

    /// The upstream took some body bytes: there may be room to read more.
    func requestBytesTaken() {
        // Not from inside readBody (its sendToUpstream got here): that loop reads on by itself,
        // and re-entering it once per block would nest as deep as the body is long.
        if readingBody { return }
        if transport.canRead && (phase == .tunnel || (phase == .exchange && !relay.requestComplete)) { readBody() }
    }

    private func discardInput() {
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while transport.canRead && fd >= 0 {
            let r = withUnsafeMutableBytes(of: &scratch) { raw in try? transport.read(raw.baseAddress!, raw.count) }
            switch r {
            case .none, .some(.done(0)): close(); return
            case .some(.wouldBlock): break
            case .some(.done): continue
            }
        }
    }

    override func resume() {
        guard waitingForSlot else { return }
        waitingForSlot = false
        loop.clearDeadline(self)
        connectUpstream()
    }

    // MARK: writing (the relay writes; the connection keeps the record and the timers)

    /// `n` response bytes reached the client's socket.
    @inline(__always)
    func wrote(_ n: Int) { exchange.bytesOut &+= Int64(n) }

    /// The relay wrote what it could.
    func outputDrained(allSent: Bool, responseQueued: Bool) {
        if phase == .closing && relay.out.isEmpty { close(); return }
        if responseQueued && allSent { finishExchange() }
        else if phase == .exchange && responseStarted && !transport.canWrite {
            loop.setDeadline(self, afterMs: worker.settings.idleMs)
        }
    }

    private func finishExchange() {
        let relay = self.relay!
        let reusable = relay.requestFullyConsumed
        if let u = relay.detachUpstream() { u.exchangeFinished(reusable: reusable) }
        relay.mirrorsPrimaryDone()
        worker.uncountLongLived(self)
        snapshot = nil
        responseStarted = false
        complete(aborted: false)
        if !exchange.keepAlive || worker.draining {
            close()
            return
        }
        phase = .waiting
        releaseRelay()
        if inBuf.isEmpty {
            inBuf.release(to: worker.buffers)
            // An idle connection keeps no per-request memory: the header index is rebuilt
            // (one allocation) by the next request.
            head.headers = []
        }
        loop.setDeadline(self, afterMs: worker.settings.idleMs)
        if !inBuf.isEmpty || transport.canRead { readHead() }
    }

    /// Closes the exchange record once, whichever way the exchange ended.
    private func complete(aborted: Bool) {
        if exchange.finish(aborted: aborted) { worker.exchangeFinished(exchange, logPrefix: logPrefix) }
    }

    /// Answers from the proxy itself. `close` ends the connection after the answer.
    func respondLocally(status: Int, detail: StaticString, close shouldClose: Bool, retryAfter: Bool = false) {
        if responseStarted { abort(); return }
        leaveSlotQueue()
        relay.abandonMirrors()
        exchange.status = status
        exchange.source = .proxy
        exchange.reason = detail
        let closing = shouldClose || !exchange.keepAlive || worker.draining
        let relay = self.relay!
        let buffers = worker.buffers
        worker.httpDate.withLine { date in
            worker.withVariantLine(exchange.decision) { line in
                HeadWriter.writeError(status: status, detail: detail, close: closing, extraHeaders: retryAfter ? "Retry-After: 1\r\n" : "",
                                      variantLine: line, dateLine: date, into: &relay.out, pool: buffers)
            }
        }
        responseStarted = true
        if closing {
            exchange.keepAlive = false
            phase = .closing
            relay.endRequest()
            relay.queueLocalResponse(closing: true)
            // The record is complete: nothing more is read or answered on this connection.
            complete(aborted: false)
            loop.setDeadline(self, afterMs: min(worker.settings.idleMs, 5_000))
            relay.sendToClient()
        } else {
            phase = .exchange
            relay.queueLocalResponse(closing: false)
            relay.sendToClient()
        }
    }

    private func dropUpstream() {
        if let u = relay?.detachUpstream() { u.abandon() }
    }

    // MARK: tunnel

    /// The upstream agreed to switch protocols: bytes flow both ways until either side closes.
    func startTunnel() {
        phase = .tunnel
        relay.beginTunnel()
    }

    func tunnelClosed() {
        // Either side of a tunnel closed: deliver what is buffered, then end both.
        dropUpstream()
        phase = .closing
        relay.sendToClient()
    }

    // MARK: shutdown

    /// Graceful drain: an idle connection closes now; a busy one after its response.
    func drain() {
        if phase == .waiting { close() } else { exchange.keepAlive = false }
    }

    func abort() {
        relay?.abandonMirrors()
        dropUpstream()
        // A body the close delimits, cut short: a clean close would tell the client it is whole.
        if exchange.bodyEndsWithClose && responseStarted { transport.resetOnClose() }
        close()
    }

    func close() {
        guard fd >= 0 else { return }
        leaveSlotQueue()
        relay?.abandonMirrors()
        dropUpstream()
        worker.uncountLongLived(self)
        complete(aborted: true)
        transport.closeNotify()
        loop.close(self)
        transport.closed()
        inBuf.release(to: worker.buffers)
        releaseRelay()
        worker.stats.sub(.activeClients)
        snapshot = nil
        worker.remove(self)
    }
}
