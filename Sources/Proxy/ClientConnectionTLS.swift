// A client connection's TLS handshake: counted when it completes, and when it fails one line
// saying why (a client that closed first is not a failure; plain HTTP gets a plain answer).
import Reactor

extension ClientConnection {
    /// The handshake just completed: counted, and the connection is an idle keep-alive one.
    func handshakeDone() {
        awaitingHandshake = false
        worker.stats.add(.tlsHandshakes)
        if transport.tls?.resumed == true { worker.stats.add(.tlsResumed) }
        if phase == .waiting { loop.setDeadline(self, afterMs: worker.settings.idleMs) }
    }

    /// The handshake failed: one line (rate-limited) and the connection closes.
    func handshakeFailed() {
        awaitingHandshake = false
        let peer = clientIP.isEmpty ? "unknown client" : String(decoding: clientIP, as: UTF8.self)
        guard let reason = transport.tlsFailure, transport.tls?.closedDuringHandshake != true else {
            // Not a TLS failure: the client closed first (a port check, a client that gave up).
            worker.stats.add(.tlsClosedBeforeHandshake)
            worker.events.write(kind: "client-tls-closed", "TLS client \(peer) closed the connection before the handshake completed")
            return
        }
        worker.stats.add(.tlsHandshakeFailures)
        worker.events.write(kind: "client-tls", "TLS handshake with \(peer) failed: \(reason)")
        if reason.contains("http request") {
            // Plain HTTP on a TLS port (OpenSSL recognises the request line): answered in plain
            // text, as NGINX does, instead of a silent close the client cannot explain.
            transport.writeUnencrypted("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 51\r\nConnection: close\r\n\r\n400 Bad Request: plain HTTP sent to a TLS listener\n")
        }
    }
}
