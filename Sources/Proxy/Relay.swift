// The byte flow of one client's exchanges, both ways, in one place (nginx's event pipe plays
// this part): the request head and body bytes to the upstream, the response to the client,
// backpressure between the two, tunnels, and long bodies spliced through a pipe in turns.
// Client and upstream connections read their own sockets and parse their own framing; what
// crosses from one to the other goes through here.
import Glibc
import HTTP1
import Reactor

final class Relay {
    enum RequestBody { case none, length, chunked, tunnel }

    /// Strong: reading an unowned(unsafe) reference makes a strong copy (a retain and a
    /// release) at every use; through a strong `let` of this object it is borrowed. Measured:
    /// 1,028 fewer instructions per proxied request (17,571 to 16,543, callgrind).
    let worker: Worker
    /// The client connection it serves; relays are pooled per worker and lent to a client for
    /// as long as it has an exchange, so an idle keep-alive connection holds none.
    unowned(unsafe) var client: ClientConnection!
    /// The upstream connection of the attempt in progress.
    private(set) var upstream: UpstreamConnection?

    // MARK: request direction state

    /// The request head serialized for the upstream; kept until the response starts so a failed
    /// attempt can be replayed on another endpoint.
    var upHead = ByteBuffer()
    private(set) var upHeadSent = 0
    /// Bytes at the front of the client's input buffer that belong to the request body and may
    /// go upstream.
    private(set) var requestReady = 0
    private(set) var bodyMode = RequestBody.none
    private var bodyRemaining: Int64 = 0
    private var chunked = ChunkedDecoder()
    /// Every byte of the request body has been read from the client.
    private(set) var requestComplete = true
    private(set) var bodyBytesSent: Int64 = 0
    /// Shadow copies of this request, fed the body as it streams.
    var mirrors: MirrorFanout?
    /// The request's method and whether it asked to switch protocols (how its response is framed).
    private(set) var requestMethod = HTTP1.Method.get
    private(set) var requestsUpgrade = false

    // MARK: response direction state

    /// Bytes for the client that the proxy produced: response heads, error answers.
    var out = ByteBuffer()
    /// Bytes at the front of the upstream's input buffer that may go to the client.
    private(set) var responseReady = 0
    /// Every byte of the response is queued here or in the upstream's buffer; done once sent.
    private(set) var responseQueued = false
    /// The client takes the chunked body's payload without its framing (an HTTP/1.0 client):
    /// the upstream connection cuts the framing out as it frames the body.
    private(set) var responsePayloadOnly = false

    // A long Content-Length response body moves upstream socket -> pipe -> client socket in the
    // kernel once the bytes already buffered have been delivered.
    private(set) var pipe: (Int32, Int32)?
    private var pipeCount = 0
    private var spliceRemaining: Int64 = 0
    static let pipeCapacity = 64 * 1024
    /// Bytes one turn of splicing may move to the client before other connections get theirs.
    static let spliceTurnBytes = 256 * 1024
    /// Bytes one turn of reading a response may take before other connections get theirs.
    static let readTurnBytes = 256 * 1024
    private var resumeQueued = false


    init(worker: Worker) {
        self.worker = worker
    }

    /// Back to the worker's pool: holds no connection and no memory.
    func reset() {
        if let u = detachUpstream() { u.abandon() }
        abandonMirrors()
        endRequest()
        out.release(to: worker.buffers)
        client = nil
    }

    // MARK: exchange lifetime

    /// A new request, with its body framing.
    func beginRequest(framing: BodyFraming, method: HTTP1.Method) {
        requestMethod = method
        requestsUpgrade = false
        upHeadSent = 0
        requestReady = 0
        bodyBytesSent = 0
        responseQueued = false
        responseReady = 0
        responsePayloadOnly = false
        switch framing {
        case .contentLength(let n):
            bodyMode = n > 0 ? .length : .none
            bodyRemaining = n
            requestComplete = n == 0
        case .chunked:
            bodyMode = .chunked
            chunked.reset()
            requestComplete = false
        case .none, .untilClose:
            bodyMode = .none
            bodyRemaining = 0
            requestComplete = true
        }
    }

    /// The declared body length (Content-Length requests).
    var contentLength: Int64 { bodyMode == .length ? bodyRemaining : 0 }

    /// An upgrade request its route allows: whatever follows its head goes upstream as it comes,
    /// until the upstream refuses the upgrade or either side closes.
    func beginTunnelAfterHead() {
        requestsUpgrade = true
        bodyMode = .tunnel
        requestComplete = false
    }

    /// The upstream agreed to switch protocols: every byte from the client goes through.
    func beginTunnel() {
        bodyMode = .tunnel
        requestComplete = false
        requestReady = client.inBuf.readableCount
    }

    /// An answer the proxy made is in `out`: the exchange ends once it is written (unless the
    /// connection closes after it, which the client connection handles).
    func queueLocalResponse(closing: Bool) {
        if !closing { responseQueued = true }
    }

    /// The primary ended before its body was complete: copies with a partial body are cut off.
    func abandonMirrors() {
        if let m = mirrors {
            mirrors = nil
            m.abandon()
        }
    }

    /// The primary finished; its copies go on by themselves.
    func mirrorsPrimaryDone() {
        if let m = mirrors {
            mirrors = nil
            m.primaryDone()
        }
    }

    /// The exchange is over (answered, or given up): nothing more flows.
    func endRequest() {
        bodyMode = .none
        requestComplete = true
        requestReady = 0
        responseQueued = false
        releaseRequestHead()
    }

    /// The response started: no attempt will replay the request head any more.
    func releaseRequestHead() {
        upHead.release(to: worker.buffers)
        upHeadSent = 0
    }

    /// What the upstream side of an attempt is told of the exchange when it is attached: the
    /// endpoint series its in-flight count goes to, whether the response body is hashed for a
    /// shadow comparison, and whether the client's socket can take spliced bytes.
    struct AttemptContext {
        var endpointSeries: Int
        var hashBody: Bool
        var clientCanSplice: Bool
    }

    /// Attaches the upstream connection of a new attempt.
    func attach(_ u: UpstreamConnection, _ context: AttemptContext) {
        upstream = u
        upHeadSent = 0
        responseReady = 0
        u.attach(self, context)
    }

    // MARK: the upstream's events, for the client connection

    @inline(__always)
    func upstreamReady(atOnce: Bool) { client.upstreamReady(atOnce: atOnce) }

    func interimArrived(_ bytes: UnsafeRawBufferPointer, _ head: ResponseHead) { client.interimArrived(bytes, head) }

    func responseHeadArrived(_ bytes: UnsafeRawBufferPointer, _ head: ResponseHead) { client.responseHeadArrived(bytes, head) }

    func hashResponseBody(_ start: UnsafeRawPointer, _ count: Int) { client.hashResponseBody(start, count) }

    /// The attempt failed before any response byte reached the client.
    func upstreamFailed(_ u: UpstreamConnection, _ failure: Attempts.Failure) { client.upstreamFailed(u, failure) }

    /// The response broke after it started: the client connection ends too.
    func upstreamBroke() { client.upstreamBroke() }

    func tunnelClosed() { client.tunnelClosed() }

    /// Lets go of the upstream connection (closed, failed or given back).
    @discardableResult
    func detachUpstream() -> UpstreamConnection? {
        let u = upstream
        upstream = nil
        responseReady = 0
        resumeQueued = false
        if let p = pipe {
            pipe = nil
            worker.givePipe(p, empty: pipeCount == 0)
            pipeCount = 0
        }
        return u
    }

    /// Whether the upstream connection can serve another exchange after this one.
    var requestFullyConsumed: Bool { requestComplete && requestReady == 0 }


    var hasPendingOutput: Bool { !out.isEmpty || responseReady > 0 || pipe != nil }

    /// The request head was written in full.
    var headSent: Bool { upHeadSent == upHead.readableCount && upHead.readableCount > 0 }

    /// The whole request (head, body) has gone upstream, or it became a tunnel.
    var requestSent: Bool { headSent && ((requestComplete && requestReady == 0) || bodyMode == .tunnel) }

    // MARK: request body from the client

    /// The client read more bytes: marks the body bytes among them ready for the upstream,
    /// finding where the body ends. Returns a framing error (status, reason) when the body is bad.
    func takeRequestBody() -> (Int, StaticString)? {
        let unclassified = client.inBuf.readableCount - requestReady
        guard unclassified > 0 else { return nil }
        switch bodyMode {
        case .none:
            return nil
        case .tunnel:
            requestReady = client.inBuf.readableCount
        case .length:
            let take = Int(min(Int64(unclassified), bodyRemaining))
            mirrors?.copyBody(UnsafeRawBufferPointer(start: client.inBuf.readPointer + requestReady, count: take))
            requestReady += take
            bodyRemaining -= Int64(take)
            if bodyRemaining == 0 { requestComplete = true }
        case .chunked:
            if let failure = takeChunked() { return failure }
            let limit = worker.settings.maxBodyBytes
            if limit > 0 && chunked.payloadBytes > limit { return (413, "request body too large") }
        }
        if requestComplete { mirrors?.bodyComplete() }
        return nil
    }

    /// Walks newly read chunked bytes: chunk-size lines and data are forwarded as they came,
    /// chunk extensions are validated and left out (no upstream needs them, and one that reads
    /// them differently would frame the body differently), by moving the bytes after them down.
    private func takeChunked() -> (Int, StaticString)? {
        var i = requestReady
        while true {
            let bytes = client.inBuf.readableBytes
            switch chunked.nextSegment(bytes, from: i) {
            case .copy(let end):
                mirrors?.copyBody(bytes.slice(i, end))
                i = end
            case .skip(let end):
                client.inBuf.remove(from: i, count: end - i)
            case .done(let end):
                mirrors?.copyBody(bytes.slice(i, end))
                i = end
                requestComplete = true
                requestReady = i
                return nil
            case .needMore:
                requestReady = i
                return nil
            case .failed(let e):
                requestReady = i
                return (e.status, e.reason)
            }
        }
    }

    /// The payload bytes of a chunked body read so far (0 for other bodies).
    var chunkedPayloadBytes: Int64 { bodyMode == .chunked ? chunked.payloadBytes : 0 }

    /// A chunked body read whole becomes its payload alone, to go with a length (a signed
    /// request's signature covers the payload). Its bytes move down in the client's buffer.
    func dechunkBufferedBody() {
        guard bodyMode == .chunked, requestComplete else { return }
        requestReady = client.inBuf.dechunk(count: requestReady)
        bodyMode = .length
        bodyRemaining = 0
    }

    /// Writes the request head and the ready body bytes to the upstream. Runs when the upstream
    /// is writable and when the client read more body.
    func sendToUpstream() {
        guard let u = upstream, u.isActive else { return }
        var tookBody = false
        var wrote = false
        while u.transport.canWrite {
            let headLen = upHead.readableCount - upHeadSent
            let bodyLen = requestReady
            if headLen == 0 && bodyLen == 0 { break }
            let r: IOResult
            do {
                r = try u.transport.write(headLen > 0 ? UnsafeRawPointer(upHead.readPointer + upHeadSent) : nil, headLen,
                                          bodyLen > 0 ? UnsafeRawPointer(client.inBuf.readPointer) : nil, bodyLen)
            } catch {
                u.writeFailed()
                return
            }
            switch r {
            case .wouldBlock:
                break
            case .done(let n):
                wrote = wrote || n > 0
                let fromHead = min(n, headLen)
                upHeadSent += fromHead
                let fromBody = n - fromHead
                if fromBody > 0 {
                    client.inBuf.consume(fromBody)
                    requestReady -= fromBody
                    bodyBytesSent += Int64(fromBody)
                    tookBody = true
                }
            }
        }
        if wrote && bodyMode == .tunnel { u.tunnelActivity() }
        u.requestProgress(sent: requestSent, wrote: wrote,
                          waitingForClient: upHeadSent == upHead.readableCount && requestReady == 0 && !requestComplete)
        if tookBody && upstream === u { client.requestBytesTaken() }
    }


    // MARK: response to the client

    /// The response head sent to the client announced the payload alone, delimited by the close.
    func sendPayloadOnly() { responsePayloadOnly = true }

    /// `n` more bytes at the front of the upstream's buffer belong to the response.
    @inline(__always)
    func responseBytesReady(_ n: Int) { responseReady += n }

    /// Every byte of the response is queued: the exchange ends once it is written.
    func responseComplete() {
        responseQueued = true
        sendToClient()
    }

    /// The rest of a long Content-Length body (`remaining` bytes) goes through a pipe once the
    /// buffered bytes have been delivered.
    func startSplice(remaining: Int64) -> Bool {
        guard pipe == nil, let p = worker.takePipe() else { return false }
        pipe = p
        pipeCount = 0
        spliceRemaining = remaining
        // A turn queued for an earlier exchange's upstream may never come back here (that
        // connection has left this relay): a stale mark would stop every later turn.
        resumeQueued = false
        return true
    }

    /// Writes what is queued for the client (proxy-made bytes first, then response bytes), then
    /// moves spliced bytes, and finishes the exchange when the response is all out.
    func sendToClient() {
        guard let c = client, c.isOpen else { return }
        let u = upstream
        while c.transport.canWrite {
            let outLen = out.readableCount
            let bodyLen = u == nil ? 0 : responseReady
            if outLen == 0 && bodyLen == 0 { break }
            let r: IOResult
            do {
                r = try c.transport.write(outLen > 0 ? UnsafeRawPointer(out.readPointer) : nil, outLen,
                                               bodyLen > 0 ? UnsafeRawPointer(u!.inBuf.readPointer) : nil, bodyLen)
            } catch {
                c.abort()
                return
            }
            switch r {
            case .wouldBlock:
                break
            case .done(let n):
                c.wrote(n)
                let fromOut = min(n, outLen)
                if fromOut > 0 { out.consume(fromOut) }
                let fromBody = n - fromOut
                if fromBody > 0, let u {
                    u.inBuf.consume(fromBody)
                    responseReady -= fromBody
                }
            }
        }
        if out.isEmpty { out.releaseIfEmpty(to: worker.buffers) }
        if let u = upstream {
            if pipe != nil {
                if c.transport.canWrite && out.isEmpty { pumpSplice() }
            } else if responseReady == 0 {
                u.responseBytesTaken()
            }
            // Either may have finished the exchange, and this relay gone back to the pool.
            guard client === c, c.isOpen else { return }
        }
        c.outputDrained(allSent: out.isEmpty && responseReady == 0 && pipe == nil, responseQueued: responseQueued)
    }

    // MARK: splicing

    /// Moves body bytes upstream -> pipe -> client until one side would block, the body is done
    /// or this turn's share is spent (then it goes on after the loop's next round of events).
    /// Runs on upstream readability and client writability.
    func pumpSplice() {
        guard let p = pipe, let u = upstream, u.isActive, client.isOpen else { return }
        var progressed = true
        var moved = 0
        while progressed {
            if moved >= Relay.spliceTurnBytes {
                if !resumeQueued {
                    resumeQueued = true
                    u.resumeSoon()
                }
                break
            }
            progressed = false
            if u.transport.canRead && spliceRemaining > 0 && pipeCount < Relay.pipeCapacity {
                let want = Int(min(spliceRemaining, Int64(Relay.pipeCapacity - pipeCount)))
                let r: IOResult
                do { r = try u.transport.splice(toPipe: p.1, want, pipeEmpty: pipeCount == 0) } catch {
                    spliceFailed()
                    return
                }
                switch r {
                case .wouldBlock:
                    break
                case .done(0):
                    spliceFailed()   // the upstream closed before the body was complete
                    return
                case .done(let n):
                    pipeCount += n
                    spliceRemaining -= Int64(n)
                    u.bodyBytesSpliced(n)
                    progressed = true
                }
            }
            if client.transport.canWrite && pipeCount > 0 && out.isEmpty {
                let r: IOResult
                do { r = try client.transport.splice(fromPipe: p.0, pipeCount) } catch {
                    spliceFailed()
                    return
                }
                switch r {
                case .wouldBlock:
                    break
                case .done(let n):
                    client.wrote(n)
                    pipeCount -= n
                    moved += n
                    progressed = n > 0 || progressed
                }
            }
        }
        u.spliceProgress()
        if spliceRemaining == 0 && pipeCount == 0 {
            worker.givePipe(p, empty: true)
            pipe = nil
            u.splicedBodyComplete()
            responseComplete()
        }
    }

    /// A queued turn of splicing.
    func resumeSplice() {
        resumeQueued = false
        pumpSplice()
    }

    private func spliceFailed() {
        if let u = detachUpstream() { u.abandon() }
        client.abort()
    }
}
