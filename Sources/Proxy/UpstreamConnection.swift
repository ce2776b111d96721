// A connection to one upstream endpoint: connect, let the relay write the request, frame the
// response (head, then which bytes are body and where it ends) and hand its bytes to the
// relay, then go back to the worker's pool when both sides allow reuse. The same connections,
// from the same pool, carry shadow copies (UpstreamCopyExchange.swift): only what is done with
// the response differs.
import Glibc
import HTTP1
import Reactor
import Routing

final class UpstreamConnection: Pollable {
    enum State { case connecting, active, idle, closed }

    /// Strong: reading an unowned(unsafe) reference makes a strong copy (a retain and a
    /// release) at every use; through a strong `let` of this object it is borrowed. Measured:
    /// 1,028 fewer instructions per proxied request (17,571 to 16,543, callgrind).
    let worker: Worker
    let endpointID: Int
    private(set) var state: State = .connecting
    var transport = Transport()
    /// Whose exchange the connection carries: a client's, through its relay, or a shadow copy's
    /// (a strong reference for the length of the exchange; the cycle is broken when it ends).
    /// An enum, not a protocol both conform to: the relay's calls stay direct on the primary's
    /// path (measured: 16,143 to 16,159 instructions per proxied request, callgrind). Nothing
    /// while waiting in the pool, and while a connection opened to learn whether a shadow
    /// endpoint is back (`probe`) connects.
    enum Serving {
        case nothing
        case relay(Relay)
        case copy(MirrorCopy)
    }
    var serving = Serving.nothing

    /// The relay of the exchange this connection serves, if a client's.
    private var relay: Relay? {
        if case .relay(let r) = serving { return r }
        return nil
    }

    var inBuf = ByteBuffer()
    // Exchange state, shared with a copy's exchange (UpstreamCopyExchange.swift).
    var framer: ResponseFramer
    private(set) var reused = false
    var receivedAny = false
    var headDone = false
    var complete = false
    var eof = false
    var requestSent = false
    /// This connection's exchange is counted in flight, in this endpoint series (its pool's).
    private var counted = false
    private var countedSeries = -1
    /// The rest of a long Content-Length body goes through a pipe once the buffered bytes are
    /// delivered.
    private var spliceWanted = false
    static let spliceThreshold: Int64 = 256 * 1024
    private var reading = false
    /// A turn of reading was cut short and resumes after the loop's next round of events.
    private var turnQueued = false
    /// The TLS handshake was counted (once per connection).
    private var tlsCounted = false
    /// Of the exchange attached: its response body is hashed (a shadow comparison), and its
    /// client's socket can take spliced bytes.
    private var hashBody = false
    private var clientCanSplice = false

    private init(worker: Worker, endpointID: Int) {
        self.worker = worker
        self.endpointID = endpointID
        self.framer = ResponseFramer(limits: worker.settings.responseLimits)
        super.init(loop: worker.loop)
    }

    /// Starts connecting; nil when the connect failed at once.
    static func connect(worker: Worker, target: UpstreamTarget) -> UpstreamConnection? {
        let c = UpstreamConnection(worker: worker, endpointID: target.endpointID)
        guard let (transport, connected) = try? worker.dial(c, target) else { return nil }
        c.transport = transport
        worker.stats.add(.upstreamConnects)
        worker.stats.add(.activeUpstreams)
        if connected {
            c.state = .active
        } else {
            c.state = .connecting
            worker.loop.setDeadline(c, afterMs: worker.settings.connectMs)
        }
        return c
    }

    var isUsable: Bool { state == .idle && fd >= 0 }
    var isActive: Bool { state == .active }

    func attach(_ r: Relay, _ context: Relay.AttemptContext) {
        serving = .relay(r)
        spliceWanted = false
        hashBody = context.hashBody
        clientCanSplice = context.clientCanSplice
        if !counted {
            counted = true
            countedSeries = context.endpointSeries
            worker.metrics.inFlight.add(countedSeries, 0)
            worker.exchangeStarted(endpoint: endpointID)
        }
        beginExchange(method: r.requestMethod, upgrade: r.requestsUpgrade)
        if state == .active {
            r.upstreamReady(atOnce: reused)
            r.sendToUpstream()
        }
    }

    /// A new exchange starts: nothing of its response has come; a pooled connection is taken.
    @inline(__always)
    func beginExchange(method: HTTP1.Method, upgrade: Bool) {
        headDone = false
        complete = false
        eof = false
        receivedAny = false
        requestSent = false
        framer.reset(requestMethod: method, upgradeRequested: upgrade)
        if state == .idle {
            state = .active
            reused = true
            loop.clearDeadline(self)
        }
    }

    // MARK: events

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        switch state {
        case .connecting:
            if events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 { finishConnect() }
        case .idle:
            // An idle pooled connection that becomes readable was closed by the upstream (or
            // sent bytes nobody asked for): either way it is no longer usable. (This event's
            // bits, not `canRead`, which a spliced body can leave set from the exchange.)
            if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 {
                worker.removeFromPool(self)
                close()
            }
        case .active:
            switch serving {
            case .relay(let r):
                if transport.canWrite { r.sendToUpstream() }
                if transport.canRead && state == .active { onReadable() }
            case .copy(let c):
                copyEvents(c)
            case .nothing:
                break
            }
        case .closed:
            break
        }
    }

    private func finishConnect() {
        if Dialer.connectError(transport) != nil {
            worker.stats.add(.upstreamConnectFailures)
            if case .relay = serving { failed(timeout: false) } else { shadowConnectFailed(timedOut: false) }
            return
        }
        state = .active
        loop.clearDeadline(self)
        transport.canWrite = true
        let r: Relay
        switch serving {
        case .relay(let relay): r = relay
        case .copy(let c): return copyConnected(c)
        case .nothing: return probeConnected()
        }
        r.upstreamReady(atOnce: false)
        r.sendToUpstream()
        if transport.canRead && state == .active { onReadable() }
    }

    override func timerFired(now: UInt64) {
        switch state {
        case .connecting:
            worker.stats.add(.upstreamConnectFailures)
            if case .relay = serving { failed(timeout: false) } else { shadowConnectFailed(timedOut: true) }
        case .active:
            worker.stats.add(.upstreamTimeouts)
            if case .copy(let c) = serving {
                copyTimedOut(c)
            } else if !headDone {
                failed(timeout: true)
            } else {
                broke()
            }
        case .idle:
            worker.removeFromPool(self)
            close()
        case .closed:
            break
        }
    }

    override func resume() {
        if turnQueued {
            turnQueued = false
            if relay?.pipe == nil {
                if state == .active && transport.canRead { onReadable() }
                return
            }
        }
        relay?.resumeSplice()
    }

    func resumeSoon() { loop.resumeSoon(self) }

    // MARK: request (written by the relay)

    /// The relay wrote what it could. responseMs counts from the end of the request: a slow
    /// upload is the client's time; while the body flows, an upstream that stops taking it is
    /// bounded by idleMs.
    ///
    /// `waitingForClient`: everything the client sent so far is written and the rest of the body
    /// has not come: the client's body timer runs, not this one (a stalled body timed out here
    /// was a 504 counted against the endpoint, so five anonymous clients could eject it).
    func requestProgress(sent: Bool, wrote: Bool, waitingForClient: Bool) {
        guard !requestSent && !headDone else { return }
        if sent {
            requestSent = true
            loop.setDeadline(self, afterMs: worker.settings.responseMs)
        } else if waitingForClient {
            loop.clearDeadline(self)
        } else if wrote {
            loop.setDeadline(self, afterMs: worker.settings.idleMs)
        }
    }

    /// Writing the request failed: retried elsewhere when this was a pooled connection the
    /// upstream had closed and nothing of the request can have been processed.
    func writeFailed() {
        failed(timeout: false)
    }

    // MARK: response

    private func onReadable() {
        guard !reading else { return }
        reading = true
        defer { reading = false }
        var turn = 0
        while transport.canRead && state == .active, let r = relay {
            if turn >= Relay.readTurnBytes {
                // This turn's share is moved: other connections on the loop get theirs before
                // the rest (a 1 MiB response over TLS went out in one go while nine others
                // waited: p99 2.5x HAProxy's at the same median).
                if !turnQueued {
                    turnQueued = true
                    loop.resumeSoon(self)
                }
                return
            }
            if spliceWanted && r.responseReady == 0 && inBuf.isEmpty {
                spliceWanted = false
                if let remaining = framer.remainingLength, r.startSplice(remaining: remaining) {
                    inBuf.release(to: worker.buffers)
                }
            }
            if r.pipe != nil {
                r.pumpSplice()
                return
            }
            let need = headDone ? worker.buffers.blockSize : worker.headRoom(for: inBuf)
            let space = inBuf.roomToRead(capacity: need, pool: worker.buffers)
            if space == 0 {
                if !headDone {
                    failed(timeout: false, headTooLarge: true)   // head larger than the limit
                }
                return   // the client has not taken what is buffered yet
            }
            let result: IOResult
            do { result = try transport.read(into: &inBuf, space: space) } catch {
                readFailed()
                return
            }
            switch result {
            case .wouldBlock:
                break
            case .done(0):
                endOfStream(r)
                return
            case .done(let n):
                receivedAny = true
                turn += n
                if headDone {
                    loop.setDeadline(self, afterMs: afterHeadMs)
                    frameBody(r)
                } else {
                    parseHead(r)
                }
                guard relay === r, state == .active || eof else { return }
                r.sendToClient()
            }
        }
    }

    private func parseHead(_ r: Relay) {
        while true {
            switch framer.feed(inBuf.readableBytes) {
            case .needMore, .body:
                return
            case .failed(let e):
                // Over the response-head limits: the answer is refused, not the endpoint.
                failed(timeout: false, headTooLarge: e.overLimit)
                return
            case .interim(let length):
                r.interimArrived(inBuf.readableBytes, framer.head)
                guard relay === r else { return }
                inBuf.consume(length)
            case .head(let length):
                headDone = true
                loop.setDeadline(self, afterMs: afterHeadMs)
                r.responseHeadArrived(inBuf.readableBytes, framer.head)
                guard relay === r else { return }
                inBuf.consume(length)
                if framer.isComplete {
                    complete = true
                    r.responseComplete()
                    return
                }
                frameBody(r)
                return
            }
        }
    }

    /// Hands newly read body bytes to the relay, finding where the body ends.
    private func frameBody(_ r: Relay) {
        let framed = r.responseReady
        let unframed = inBuf.readableCount - framed
        guard unframed > 0, !complete else { return }
        if r.responsePayloadOnly { return framePayload(r, from: framed) }
        switch framer.feed(UnsafeRawBufferPointer(start: inBuf.readPointer + framed, count: unframed)) {
        case .body(let count, let done):
            if hashBody { r.hashResponseBody(inBuf.readPointer + framed, count) }
            r.responseBytesReady(count)
            if done { complete = true }
        case .failed:
            broke()
            return
        case .needMore, .interim, .head:
            return
        }
        if !complete, let remaining = framer.remainingLength, remaining >= UpstreamConnection.spliceThreshold,
           transport.canSpliceFrom && clientCanSplice && !hashBody {
            spliceWanted = true
        }
        if complete { r.responseComplete() }
    }

    /// A chunked body for a client that takes no chunked framing: the framing the framer finds
    /// (sizes, extensions, line ends, trailers) is cut out of the buffer as it is walked, each
    /// run of payload moved down over the framing before it: one pass, however many chunks.
    private func framePayload(_ r: Relay, from framed: Int) {
        var kept = framed   // the payload ends here so far
        var at = framed     // the first byte not walked
        walk: while true {
            let segment = framer.nextPayloadSegment(inBuf.readableBytes, from: at)
            switch segment {
            case .copy(let end), .skip(let end), .done(let end):
                // A comparing shadow hashes the body as received, framing and all, for every client.
                if hashBody { r.hashResponseBody(inBuf.readPointer + at, end - at) }
                if case .copy = segment {
                    if kept < at { memmove(inBuf.readPointer + kept, inBuf.readPointer + at, end - at) }
                    kept += end - at
                }
                at = end
                if case .done = segment {
                    complete = true
                    break walk
                }
            case .needMore:
                break walk
            case .failed:
                broke()
                return
            }
        }
        inBuf.remove(from: kept, count: at - kept)
        r.responseBytesReady(kept - framed)
        if complete { r.responseComplete() }
    }

    /// Bytes of the body the relay moved through its pipe.
    func bodyBytesSpliced(_ n: Int) { framer.bodyBytesMovedExternally(n) }

    func spliceProgress() { loop.setDeadline(self, afterMs: worker.settings.readMs) }

    /// How long the response may pause once its head arrived: a tunnel's idle time, else the
    /// read timeout between two reads of a (possibly streamed) body.
    private var afterHeadMs: UInt64 { framer.isTunnel ? worker.settings.tunnelMs : worker.settings.readMs }

    /// Bytes went through the tunnel towards the upstream: it is not idle.
    func tunnelActivity() { if headDone && framer.isTunnel { loop.setDeadline(self, afterMs: worker.settings.tunnelMs) } }

    func splicedBodyComplete() { complete = true }

    private func endOfStream(_ r: Relay) {
        transport.canRead = false
        if !receivedAny {
            // A reused connection the upstream had closed: safe to retry elsewhere.
            failed(timeout: false)
            return
        }
        if !headDone {
            failed(timeout: false)
            return
        }
        if framer.isTunnel {
            eof = true
            closeSocket()
            state = .closed
            r.sendToClient()
            if relay === r && r.responseReady == 0 { r.tunnelClosed() }
        } else if complete {
            eof = true
            closeSocket()
            state = .closed
        } else if framer.endOfStream() {
            // A body delimited by the close.
            eof = true
            complete = true
            closeSocket()
            state = .closed
            r.responseComplete()
        } else {
            // The upstream died mid-body: the client connection ends without a second response.
            broke()
        }
    }

    private func readFailed() {
        if headDone { broke() } else { failed(timeout: false) }
    }

    /// The relay sent every response byte it had: resume reading if reading had paused.
    func responseBytesTaken() {
        if eof {
            if framer.isTunnel, let r = relay { r.tunnelClosed() }
            return
        }
        if transport.canRead && state == .active && !reading { onReadable() }
    }

    // MARK: end of an exchange

    private func uncount() {
        if counted {
            counted = false
            worker.metrics.inFlight.sub(countedSeries, 0)
            worker.exchangeEnded(endpoint: endpointID)
        }
    }

    func exchangeFinished(reusable: Bool) {
        serving = .nothing
        uncount()
        if transport.tls != nil { worker.noteTLS(transport, endpoint: endpointID, counted: &tlsCounted) }
        if reusable && state == .active && complete && !eof && !framer.isTunnel
            && framer.head.keepAlive && inBuf.isEmpty && !worker.draining {
            park()
        } else {
            close()
        }
    }

    /// Waits in the worker's pool for the next exchange (a primary's or a copy's).
    func park() {
        serving = .nothing
        inBuf.release(to: worker.buffers)
        state = .idle
        worker.returnToPool(self)
    }

    /// The client no longer wants this exchange.
    func abandon() {
        serving = .nothing
        close()
    }

    /// The attempt failed before any response byte reached the client: the client connection
    /// decides what follows (Attempts.swift) from how it failed.
    private func failed(timeout: Bool, headTooLarge: Bool = false) {
        if transport.tls != nil { worker.upstreamTLSFailed(transport, endpoint: endpointID) }
        let failure = Attempts.Failure(reused: reused, connected: state != .connecting, receivedAny: receivedAny, timeout: timeout,
                                       bodySent: relay?.bodyBytesSent ?? 0, wholeRequestSent: relay?.requestSent ?? false,
                                       headTooLarge: headTooLarge)
        let r = relay
        serving = .nothing
        close()
        r?.upstreamFailed(self, failure)
    }

    /// The response broke after it started: the client connection ends too.
    private func broke() {
        let r = relay
        serving = .nothing
        close()
        r?.upstreamBroke()
    }

    func closeIdle() { close() }

    /// Closes the socket but keeps buffered response bytes for the client to drain.
    private func closeSocket() {
        guard fd >= 0 else { return }
        if transport.tls != nil {
            worker.noteTLS(transport, endpoint: endpointID, counted: &tlsCounted)
            transport.closeNotify()
        }
        loop.close(self)
        transport.closed()
        worker.stats.sub(.activeUpstreams)
    }

    func close() {
        uncount()
        spliceWanted = false
        closeSocket()
        if inBuf.hasStorage { inBuf.release(to: worker.buffers) }
        state = .closed
    }
}
