// A client connection's side of the upstream's response: whether an answer in error goes to
// another endpoint, the head the client gets (its framing and the connection's fate), interim
// heads, and the body's hash for a shadow comparison. The body's bytes flow through the relay.
import HTTP1
import Reactor

extension ClientConnection {
    /// The upstream's response head is parsed: send ours, then the relay carries the body.
    func responseHeadArrived(_ bytes: UnsafeRawBufferPointer, _ rh: ResponseHead) {
        let relay = self.relay!
        if rh.status >= 500 {
            let verdict = Attempts.afterHead(status: rh.status, policy: worker.resilience.policy(exchange.decision.upstream),
                                             method: exchange.method, bodySent: relay.bodyBytesSent, wholeRequestSent: relay.requestSent)
            if verdict.endpointFailed {
                worker.endpointFailed(exchange.endpoint, upstream: exchange.decision.upstream)
            } else {
                worker.endpointSucceeded(exchange.endpoint)   // it answered: no gateway failure
            }
            if verdict.retryWanted && mayRetry(true) {
                // This answer is dropped with its connection; another endpoint gets the request.
                relay.detachUpstream()?.abandon()
                connectUpstream()
                return
            }
        } else {
            worker.endpointSucceeded(exchange.endpoint)
        }
        switch rh.framing {
        case .untilClose:
            // Only a close-delimited body ends the client's connection; the upstream's own
            // "Connection: close" (always sent to the HTTP/1.0 requests we forward) is about its hop.
            exchange.keepAlive = false
            exchange.bodyEndsWithClose = true
        case .chunked where exchange.isHTTP10:
            // An HTTP/1.0 client takes no chunked framing (RFC 9112 6.1): it gets the payload
            // alone, which the close delimits. A coding under the chunks (gzip) would stay on
            // that payload with no field left to name it: such an answer is refused (NGINX
            // refuses it for every client).
            if rh.hasCodingBesidesChunked(in: bytes) {
                relay.detachUpstream()?.abandon()
                respondLocally(status: 502, detail: "a transfer coding an HTTP/1.0 client cannot take", close: true)
                return
            }
            exchange.keepAlive = false
            exchange.bodyEndsWithClose = true
            relay.sendPayloadOnly()
        default:
            break
        }
        responseStarted = true
        exchange.responseHeadNs = Sys.monotonicNs()
        relay.releaseRequestHead()
        let status = rh.status
        exchange.status = status
        exchange.source = .upstream
        let upgrading = status == 101 && relay.requestsUpgrade
        let requestDone = relay.requestComplete
        worker.countLongLived(self, pool: exchange.poolSeries, tunnel: upgrading)
        worker.withVariantLine(exchange.decision) { line in
            HeadWriter.writeResponse(bytes, rh, keepAlive: exchange.keepAlive && (requestDone || upgrading), clientHTTP10: exchange.isHTTP10,
                                     variantLine: line, snapshot: snapshot, decision: exchange.decision, secure: secure,
                                     into: &relay.out, pool: worker.buffers)
        }
        if !requestDone && !upgrading {
            // The upstream answered before the whole body arrived: the rest of the body would
            // be read as the next request, so this connection ends with the response.
            exchange.keepAlive = false
        }
        if upgrading { startTunnel() }
    }

    func interimArrived(_ bytes: UnsafeRawBufferPointer, _ rh: ResponseHead) {
        HeadWriter.writeInterim(bytes, rh, into: &relay.out, pool: worker.buffers)
        relay.sendToClient()
    }

    /// Response body bytes of the primary, folded into its hash for a shadow comparison.
    func hashResponseBody(_ start: UnsafeRawPointer, _ count: Int) {
        exchange.bodyHash = BodyHash.fold(exchange.bodyHash, UnsafeRawBufferPointer(start: start, count: count))
    }
}
