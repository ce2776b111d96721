// Small request bodies read whole before an endpoint is picked (limits.bufferBodyBytes, NGINX's
// proxy_request_buffering bounded to small bodies): a client that trickles its body holds its
// own connection only, never an upstream connection or an endpoint's in-flight slot, until its
// body is in or timeouts.bodyMs answers it 408. A Content-Length body up to the limit is held
// whole; a chunked one until it ends or outgrows the limit, and from there it streams.
// A request to a signing upstream (UpstreamSigning) is held whole up to its own limit,
// auth.aws.maxBodyBytes, since the signature covers the body's hash: a larger one is answered
// 413 before anything reaches the upstream, and a chunked one goes with its length.
import HTTP1
import Reactor

extension ClientConnection {
    /// Whether the body of this request is read whole before its first attempt (an allowed
    /// upgrade's bytes are a tunnel's, never buffered). When it is, the proxy answers
    /// `Expect: 100-continue` itself and the field is not forwarded: the upstream would send a
    /// second 100 for a body that is already there.
    @inline(__always)
    func buffersBody(_ head: inout RequestHead) -> Bool {
        let buffered: Bool
        switch head.framing {
        case .none, .untilClose: return false
        case .contentLength(let n): buffered = n <= (signing?.maxBodyBytes ?? worker.settings.bufferBodyBytes) && !head.upgrade
        case .chunked: buffered = (signing != nil || worker.settings.bufferBodyBytes > 0) && !head.upgrade
        }
        if buffered && head.expectContinue {
            for i in head.headers.indices where head.headers[i].kind == .expect { head.headers[i].hopByHop = true }
        }
        return buffered
    }

    /// Right after the head: whether the body is still being read (no attempt started). A client
    /// waiting for 100 Continue gets it now, from the proxy.
    func keepsBuffering(expectContinue: Bool) -> Bool {
        guard stillBuffering() else { return false }
        if expectContinue {
            let interim: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
            exchange.continueBytes = Int64(interim.utf8CodeUnitCount)
            relay.out.append(interim, pool: worker.buffers)
            relay.sendToClient()
        }
        return true
    }

    /// More of a buffered body was read: once it is whole (or a chunked one has outgrown the
    /// limit), its attempts start.
    func bufferedBodyGrew() {
        if let s = signing, !relay.requestComplete,
           relay.chunkedPayloadBytes > s.maxBodyBytes || inBuf.readableCount >= signedBufferLimit(s) {
            signedBodyTooLarge()
            return
        }
        if stillBuffering() { return }
        exchange.bodyBufferedNs = Sys.monotonicNs()
        startAttempts()
    }

    /// What a buffering client connection reads into: the limit, and never less than a block.
    /// For a signed request, twice what is buffered so far up to its limit: a 100-byte body does
    /// not take megabytes.
    var bodyBufferCapacity: Int {
        guard let s = signing else { return max(worker.buffers.blockSize, Int(worker.settings.bufferBodyBytes)) }
        return min(signedBufferLimit(s), max(worker.buffers.blockSize, inBuf.readableCount * 2))
    }

    /// The bytes a signed request's body may take as read (a chunked one's framing included).
    private func signedBufferLimit(_ s: UpstreamSigning) -> Int { Int(s.maxBodyBytes) * 2 + worker.buffers.blockSize }

    /// The request has what an upstream needs to start: it counts toward its upstream's retry
    /// budget, and the first attempt begins. A signed request's head is signed now, over its
    /// whole body.
    func startAttempts() {
        if let s = signing {
            if relay.chunkedPayloadBytes > s.maxBodyBytes {
                signedBodyTooLarge()
                return
            }
            relay.dechunkBufferedBody()
            let body = relay.requestReady > 0 ? UnsafeRawBufferPointer(start: inBuf.readPointer, count: relay.requestReady)
                                              : UnsafeRawBufferPointer(start: nil, count: 0)
            worker.sign(&relay.upHead, with: s, body: body)
        }
        worker.budgetRequest(upstream: exchange.decision.upstream)
        connectUpstream()
    }

    /// Before anything is sent: a signed upstream takes no body it cannot hash whole.
    func signedBodyTooLarge() {
        worker.stats.add(.signedBodyTooLarge)
        respondLocally(status: 413, detail: "request body too large for a signed upstream", close: true)
    }

    private func stillBuffering() -> Bool {
        if relay.requestComplete || (signing == nil && Int64(inBuf.readableCount) >= worker.settings.bufferBodyBytes) {
            bufferingBody = false
        }
        return bufferingBody
    }
}
