// Small request bodies read whole before an endpoint is picked (limits.bufferBodyBytes, NGINX's
// proxy_request_buffering bounded to small bodies): a client that trickles its body holds its
// own connection only, never an upstream connection or an endpoint's in-flight slot, until its
// body is in or timeouts.bodyMs answers it 408. A Content-Length body up to the limit is held
// whole; a chunked one until it ends or outgrows the limit, and from there it streams.
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
        case .contentLength(let n): buffered = n <= worker.settings.bufferBodyBytes && !head.upgrade
        case .chunked: buffered = worker.settings.bufferBodyBytes > 0 && !head.upgrade
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
        if stillBuffering() { return }
        exchange.bodyBufferedNs = Sys.monotonicNs()
        startAttempts()
    }

    /// What a buffering client connection reads into: the limit, and never less than a block.
    var bodyBufferCapacity: Int { max(worker.buffers.blockSize, Int(worker.settings.bufferBodyBytes)) }

    /// The request has what an upstream needs to start: it counts toward its upstream's retry
    /// budget, and the first attempt begins.
    func startAttempts() {
        worker.budgetRequest(upstream: exchange.decision.upstream)
        connectUpstream()
    }

    private func stillBuffering() -> Bool {
        if relay.requestComplete || Int64(inBuf.readableCount) >= worker.settings.bufferBodyBytes { bufferingBody = false }
        return bufferingBody
    }
}
