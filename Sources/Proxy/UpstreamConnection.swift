// A connection to one upstream endpoint: connect, send the attached client's request, parse
// and relay the response, then go back to the worker's pool when both sides allow reuse.
import Glibc
import HTTP1
import Reactor
import Routing

final class UpstreamConnection: Pollable {
    enum State { case connecting, active, idle, closed }
    enum BodyMode { case none, length, chunked, untilClose, tunnel }

    unowned(unsafe) let worker: Worker
    let endpointID: Int
    var state: State = .connecting
    /// The client whose exchange this connection serves (a strong reference for the length of
    /// the exchange; the cycle is broken when the exchange ends).
    var client: ClientConnection?

    var inBuf = ByteBuffer()
    /// Bytes at `inBuf.reader` that belong to the response and may go to the client.
    var ready = 0
    var parser: ResponseParser
    var head = ResponseHead()
    var canRead = false
    var canWrite = false
    /// The peer's FIN (or a hang-up) was reported: reading continues until it is seen.
    var peerFinished = false
    var reused = false
    var receivedAny = false
    var headDone = false
    var bodyMode: BodyMode = .none
    var bodyRemaining: Int64 = 0
    var chunked = ChunkedDecoder()
    var complete = false
    var eof = false
    private var requestSent = false
    /// This connection's exchange is counted in the endpoint's in-flight total.
    private var counted = false
    /// A long Content-Length body moves upstream socket -> pipe -> client socket in the kernel
    /// once the bytes already buffered have been delivered (`spliceWanted`), no copy through
    /// user space.
    private var spliceWanted = false
    private(set) var pipe: (Int32, Int32)?
    private var pipeCount = 0
    static let spliceThreshold: Int64 = 256 * 1024
    static let pipeCapacity = 64 * 1024
    private var reading = false

    private init(worker: Worker, endpointID: Int) {
        self.worker = worker
        self.endpointID = endpointID
        self.parser = ResponseParser(limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    /// Starts connecting; nil when the connect failed at once.
    static func connect(worker: Worker, endpointID: Int, address: SocketAddress) -> UpstreamConnection? {
        let fd: Int32
        let connected: Bool
        do {
            fd = try Sys.socket(family: address.family)
        } catch { return nil }
        do {
            connected = try Sys.connect(fd, address)
        } catch {
            Sys.close(fd)
            return nil
        }
        Sys.setNoDelay(fd)
        let c = UpstreamConnection(worker: worker, endpointID: endpointID)
        do { try worker.loop.register(c, fd: fd) } catch {
            Sys.close(fd)
            return nil
        }
        worker.stats.add(.upstreamConnects)
        worker.stats.add(.activeUpstreams)
        if connected {
            c.state = .active
            c.canWrite = true
        } else {
            c.state = .connecting
            worker.loop.setDeadline(c, afterMs: worker.settings.connectMs)
        }
        return c
    }

    var isUsable: Bool { state == .idle && fd >= 0 }

    func attach(_ c: ClientConnection) {
        client = c
        spliceWanted = false
        if !counted {
            counted = true
            worker.counters.exchangeStarted(endpoint: endpointID)
        }
        ready = 0
        headDone = false
        complete = false
        eof = false
        receivedAny = false
        requestSent = false
        bodyMode = .none
        parser.reset()
        if state == .idle {
            state = .active
            reused = true
            loop.clearDeadline(self)
        }
        if state == .active {
            flushRequest()
        }
    }

    // MARK: events

    override func handleEvents(_ events: UInt32) {
        if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 { canRead = true }
        if events & (PollEvents.peerClosed | PollEvents.hangUp) != 0 { peerFinished = true }
        if events & PollEvents.output != 0 { canWrite = true }
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
            if canWrite { flushRequest() }
            if canRead && state == .active { onReadable() }
        case .closed:
            break
        }
    }

    private func finishConnect() {
        let err = Sys.socketError(fd)
        if err != 0 {
            worker.stats.add(.upstreamConnectFailures)
            failed(retryable: true, timeout: false)
            return
        }
        state = .active
        loop.clearDeadline(self)
        canWrite = true
        if client == nil {
            close()
            return
        }
        flushRequest()
        if canRead && state == .active { onReadable() }
    }

    override func timerFired(now: UInt64) {
        switch state {
        case .connecting:
            worker.stats.add(.upstreamConnectFailures)
            failed(retryable: true, timeout: false)
        case .active:
            worker.stats.add(.upstreamTimeouts)
            if !headDone {
                failed(retryable: false, timeout: true)
            } else {
                let c = client
                client = nil
                close()
                c?.abort()
            }
        case .idle:
            worker.removeFromPool(self)
            close()
        case .closed:
            break
        }
    }

    // MARK: request

    func flushRequest() {
        guard state == .active, let c = client else { return }
        var tookBody = false
        var wrote = false
        while canWrite {
            let headLen = c.upHead.readableCount - c.upHeadSent
            let bodyLen = c.ready
            if headLen == 0 && bodyLen == 0 { break }
            let r: IOResult
            do {
                r = try Sys.writev2(fd, headLen > 0 ? UnsafeRawPointer(c.upHead.readPointer + c.upHeadSent) : nil, headLen,
                                    bodyLen > 0 ? UnsafeRawPointer(c.inBuf.readPointer) : nil, bodyLen)
            } catch {
                failed(retryable: reused && !receivedAny && c.bodyBytesSent == 0, timeout: false)
                return
            }
            switch r {
            case .wouldBlock:
                canWrite = false
            case .done(let n):
                wrote = wrote || n > 0
                let fromHead = min(n, headLen)
                c.upHeadSent += fromHead
                let fromBody = n - fromHead
                if fromBody > 0 {
                    c.inBuf.consume(fromBody)
                    c.ready -= fromBody
                    c.bodyBytesSent += Int64(fromBody)
                    tookBody = true
                }
            }
        }
        if !requestSent && !headDone && c.upHeadSent == c.upHead.readableCount && c.upHead.readableCount > 0 {
            // responseMs counts from the end of the request: a slow upload is the client's time.
            // While the body flows, an upstream that stops taking it is bounded by idleMs.
            if (c.requestComplete && c.ready == 0) || c.bodyMode == .tunnel {
                requestSent = true
                loop.setDeadline(self, afterMs: worker.settings.responseMs)
            } else if wrote {
                loop.setDeadline(self, afterMs: worker.settings.idleMs)
            }
        }
        if tookBody && client === c { c.requestBytesTaken() }
    }

    // MARK: response

    private func onReadable() {
        guard !reading else { return }
        reading = true
        defer { reading = false }
        while canRead && state == .active, let c = client {
            if spliceWanted && ready == 0 && inBuf.isEmpty { startSplice() }
            if pipe != nil {
                pumpSplice()
                return
            }
            let need = headDone ? worker.buffers.blockSize : worker.settings.limits.maxHeadBytes + 1
            let space = inBuf.roomToRead(capacity: need, pool: worker.buffers)
            if space == 0 {
                if !headDone {
                    failed(retryable: false, timeout: false)   // head larger than the limit
                }
                return   // the client has not taken what is buffered yet
            }
            let r: IOResult
            do { r = try Sys.read(fd, inBuf.writePointer, space) } catch {
                readFailed(c)
                return
            }
            switch r {
            case .wouldBlock:
                canRead = false
            case .done(0):
                endOfStream(c)
                return
            case .done(let n):
                inBuf.writer += n
                // A short read drained the socket; edge-triggered epoll reports new data. Not
                // a close, though, when it came with the data: that end-of-stream is read next.
                if n < space && !peerFinished { canRead = false }
                receivedAny = true
                if headDone {
                    loop.setDeadline(self, afterMs: worker.settings.idleMs)
                    classify(c)
                } else {
                    parseHead(c)
                }
                guard client === c, state == .active || eof else { return }
                c.flush()
            }
        }
    }

    private func parseHead(_ c: ClientConnection) {
        while true {
            switch parser.parse(inBuf.readableBytes, requestMethod: c.method, into: &head) {
            case .incomplete:
                return
            case .failed:
                failed(retryable: false, timeout: false)
                return
            case .complete:
                let bytes = inBuf.readableBytes
                let status = head.status
                if status >= 100 && status < 200 && status != 101 {
                    c.interimArrived(bytes, head)
                    guard client === c else { return }
                    inBuf.consume(Int(head.headLength))
                    parser.reset()
                    continue
                }
                if status == 101 && !c.head.upgrade {
                    failed(retryable: false, timeout: false)
                    return
                }
                headDone = true
                loop.setDeadline(self, afterMs: worker.settings.idleMs)
                switch head.framing {
                case .none: bodyMode = .none
                case .contentLength(let n):
                    bodyMode = n > 0 ? .length : .none
                    bodyRemaining = n
                case .chunked:
                    bodyMode = .chunked
                    chunked.reset()
                case .untilClose: bodyMode = .untilClose
                }
                if status == 101 { bodyMode = .tunnel }
                c.responseHeadArrived(self, bytes, head)
                guard client === c else { return }
                inBuf.consume(Int(head.headLength))
                parser.reset()
                if bodyMode == .none {
                    complete = true
                    c.responseComplete()
                    return
                }
                classify(c)
                return
            }
        }
    }

    private func classify(_ c: ClientConnection) {
        let unclassified = inBuf.readableCount - ready
        guard unclassified > 0, !complete else { return }
        switch bodyMode {
        case .none:
            return
        case .untilClose, .tunnel:
            ready = inBuf.readableCount
            return
        case .length:
            let take = Int(min(Int64(unclassified), bodyRemaining))
            ready += take
            bodyRemaining -= Int64(take)
            if bodyRemaining == 0 { complete = true }
            if bodyRemaining >= UpstreamConnection.spliceThreshold { spliceWanted = true }
        case .chunked:
            let bytes = UnsafeRawBufferPointer(start: inBuf.readPointer + ready, count: unclassified)
            switch chunked.consume(bytes) {
            case .needMore(let n): ready += n
            case .done(let n):
                ready += n
                complete = true
            case .failed:
                let client = self.client
                self.client = nil
                close()
                client?.abort()
                return
            }
        }
        if complete { c.responseComplete() }
    }

    private func endOfStream(_ c: ClientConnection) {
        canRead = false
        if !receivedAny {
            // A reused connection the upstream had closed: safe to retry elsewhere.
            failed(retryable: reused && c.bodyBytesSent == 0, timeout: false)
            return
        }
        if !headDone {
            failed(retryable: false, timeout: false)
            return
        }
        switch bodyMode {
        case .untilClose:
            eof = true
            complete = true
            ready = inBuf.readableCount
            closeSocket()
            state = .closed
            c.responseComplete()
        case .tunnel:
            eof = true
            closeSocket()
            state = .closed
            c.flush()
            if client === c && ready == 0 { c.tunnelClosed() }
        default:
            if complete {
                eof = true
                closeSocket()
                state = .closed
                return
            }
            // The upstream died mid-body: the client connection ends without a second response.
            client = nil
            close()
            c.abort()
        }
    }

    private func readFailed(_ c: ClientConnection) {
        if !receivedAny {
            failed(retryable: reused && c.bodyBytesSent == 0, timeout: false)
        } else if !headDone {
            failed(retryable: false, timeout: false)
        } else {
            client = nil
            close()
            c.abort()
        }
    }

    // MARK: splicing

    private func startSplice() {
        spliceWanted = false
        guard let p = worker.takePipe() else { return }
        pipe = p
        pipeCount = 0
        inBuf.release(to: worker.buffers)
    }

    /// Bytes one turn of splicing may move to the client before other connections get theirs.
    static let spliceTurnBytes = 256 * 1024
    private var resumeQueued = false

    override func resume() {
        resumeQueued = false
        pumpSplice()
    }

    /// Moves body bytes upstream -> pipe -> client until one side would block, the body is done
    /// or this turn's share is spent (then it goes on after the loop's next round of events).
    /// Runs on upstream readability and client writability.
    func pumpSplice() {
        guard let p = pipe, let c = client, c.fd >= 0, state == .active else { return }
        var progressed = true
        var moved = 0
        while progressed {
            if moved >= UpstreamConnection.spliceTurnBytes {
                if !resumeQueued {
                    resumeQueued = true
                    loop.resumeSoon(self)
                }
                break
            }
            progressed = false
            if canRead && bodyRemaining > 0 && pipeCount < UpstreamConnection.pipeCapacity {
                let want = Int(min(bodyRemaining, Int64(UpstreamConnection.pipeCapacity - pipeCount)))
                let r: IOResult
                do { r = try Sys.splice(fd, p.1, want) } catch {
                    spliceFailed(c)
                    return
                }
                switch r {
                case .wouldBlock:
                    // A pipe fills by its 16 buffers, not by bytes: a body sent in small segments
                    // fills it with a few KiB, and then "would block" says nothing about the
                    // socket. Only with the pipe empty does it mean the socket is drained (taken
                    // for drained while megabytes waited, the body stalled until the idle timeout).
                    if pipeCount == 0 { canRead = false }
                case .done(0):
                    spliceFailed(c)   // the upstream closed before the body was complete
                    return
                case .done(let n):
                    pipeCount += n
                    bodyRemaining -= Int64(n)
                    progressed = true
                }
            }
            if c.canWrite && pipeCount > 0 && c.out.isEmpty {
                let r: IOResult
                do { r = try Sys.splice(p.0, c.fd, pipeCount) } catch {
                    spliceFailed(c)
                    return
                }
                switch r {
                case .wouldBlock: c.canWrite = false
                case .done(let n):
                    pipeCount -= n
                    moved += n
                    progressed = n > 0 || progressed
                }
            }
        }
        loop.setDeadline(self, afterMs: worker.settings.idleMs)
        if bodyRemaining == 0 && pipeCount == 0 {
            worker.givePipe(p, empty: true)
            pipe = nil
            complete = true
            c.responseComplete()
        }
    }

    private func spliceFailed(_ c: ClientConnection) {
        client = nil
        close()
        c.abort()
    }

    /// The client wrote out every ready byte: resume reading if reading had paused.
    func responseBytesTaken() {
        if eof {
            if bodyMode == .tunnel, let c = client { c.tunnelClosed() }
            return
        }
        if canRead && state == .active && !reading { onReadable() }
    }

    // MARK: end of an exchange

    private func uncount() {
        if counted {
            counted = false
            worker.counters.exchangeEnded(endpoint: endpointID)
        }
    }

    func exchangeFinished(reusable: Bool) {
        client = nil
        uncount()
        if reusable && state == .active && complete && !eof && bodyMode != .tunnel && bodyMode != .untilClose
            && head.keepAlive && inBuf.readableCount == ready && ready == 0 && !worker.draining {
            inBuf.release(to: worker.buffers)
            state = .idle
            worker.returnToPool(self)
        } else {
            close()
        }
    }

    /// The client no longer wants this exchange.
    func abandon() {
        client = nil
        close()
    }

    private func failed(retryable: Bool, timeout: Bool) {
        let c = client
        client = nil
        close()
        c?.upstreamFailed(self, retryable: retryable, timeout: timeout)
    }

    func closeIdle() { close() }

    /// Closes the socket but keeps buffered response bytes for the client to drain.
    private func closeSocket() {
        guard fd >= 0 else { return }
        loop.close(self)
        worker.stats.sub(.activeUpstreams)
    }

    func close() {
        uncount()
        if let p = pipe {
            pipe = nil
            worker.givePipe(p, empty: pipeCount == 0)
            pipeCount = 0
        }
        spliceWanted = false
        closeSocket()
        if inBuf.hasStorage { inBuf.release(to: worker.buffers) }
        state = .closed
        ready = 0
    }
}
