// One TLS session over a non-blocking socket: the handshake, record reads and writes, and the
// closing alert. Every call returns at once; "want read" and "want write" say which readiness
// the caller must wait for (a read may need to write during a key update, and the reverse).
internal import COpenSSL
import CLinux
import Glibc

public final class TLSConnection {
    public enum Progress: Equatable {
        case done
        case wantRead
        case wantWrite
        case failed(String)
    }

    public enum IO: Equatable {
        case done(Int)
        /// The peer closed (close_notify, or its FIN: most peers skip the alert).
        case closed
        case wantRead
        case wantWrite
        case failed(String)
    }

    let ssl: OpaquePointer
    /// What must stay alive while OpenSSL may call back into it (the SNI table of a server, the
    /// session sink of a client).
    private let owner: AnyObject?
    public private(set) var established = false
    /// Why the session failed (handshake, verification, a bad record), once it has.
    public private(set) var failure: String?
    /// A session ticket the upstream sent for resuming later (client side), owned until taken.
    private var newSession: OpaquePointer?

    init(ssl: OpaquePointer, owner: AnyObject?) {
        self.ssl = ssl
        self.owner = owner
    }

    deinit {
        if let s = newSession { SSL_SESSION_free(s) }
        SSL_free(ssl)
    }

    private func progress(_ r: Int32) -> Progress {
        let e = SSL_get_error(ssl, r)
        if e == sy_SSL_ERROR_WANT_READ() { return .wantRead }
        if e == sy_SSL_ERROR_WANT_WRITE() { return .wantWrite }
        return .failed(failureReason(e))
    }

    /// Why the session failed: the certificate check when that was it, else OpenSSL's queue.
    private func failureReason(_ e: Int32) -> String {
        let verify = SSL_get_verify_result(ssl)
        if verify != Int(sy_X509_V_OK()) {
            TLSError.clearQueue()
            return "certificate verify failed: " + String(cString: X509_verify_cert_error_string(verify))
        }
        let queued = TLSError.drainQueue()
        if !queued.isEmpty { return queued }
        if e == sy_SSL_ERROR_SYSCALL() {
            let n = sy_errno()
            return n == 0 ? "connection closed during the handshake" : String(cString: strerror(n))
        }
        return "TLS error \(e)"
    }

    /// Advances the handshake.
    public func handshake() -> Progress {
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            established = true
            return .done
        }
        let e = SSL_get_error(ssl, r)
        if e == sy_SSL_ERROR_ZERO_RETURN() || (e == sy_SSL_ERROR_SYSCALL() && sy_errno() == 0 && ERR_peek_error() == 0) {
            // The peer closed without a word of TLS going wrong: a port check, a client that
            // gave up, a load balancer's probe.
            TLSError.clearQueue()
            closedDuringHandshake = true
            failure = "connection closed during the handshake"
            return .failed(failure!)
        }
        let p = progress(r)
        if case .failed(let reason) = p { failure = reason }
        return p
    }

    /// The peer closed the connection before the handshake completed (no TLS error).
    public private(set) var closedDuringHandshake = false

    /// Reads decrypted bytes (at most `n`).
    @inline(__always)
    public func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> IO {
        var got = 0
        let r = SSL_read_ex(ssl, p, n, &got)
        if r == 1 { return .done(got) }
        return ioFailure(Int32(r))
    }

    @inline(never)
    private func ioFailure(_ r: Int32) -> IO {
        let e = SSL_get_error(ssl, r)
        if e == sy_SSL_ERROR_WANT_READ() { return .wantRead }
        if e == sy_SSL_ERROR_WANT_WRITE() { return .wantWrite }
        if e == sy_SSL_ERROR_ZERO_RETURN() { return .closed }
        if e == sy_SSL_ERROR_SYSCALL() {
            let n = sy_errno()
            TLSError.clearQueue()
            if n == 0 { return .closed }
            failure = String(cString: strerror(n))
            return .failed(failure!)
        }
        failure = failureReason(e)
        return .failed(failure!)
    }

    /// Writes `n` bytes as records; with partial writes on, returns after the first record (or
    /// batch) that went out. A write that wanted readiness must be repeated with the same bytes
    /// at the front (more may follow them).
    @inline(__always)
    public func write(_ p: UnsafeRawPointer, _ n: Int) -> IO {
        var put = 0
        let r = SSL_write_ex(ssl, p, n, &put)
        if r == 1 { return .done(put) }
        return ioFailure(Int32(r))
    }

    /// Writes two regions: small ones gathered into one record (one write call instead of two),
    /// then the rest of the second directly.
    public func write(_ p1: UnsafeRawPointer?, _ n1: Int, _ p2: UnsafeRawPointer?, _ n2: Int) -> IO {
        if n1 == 0 { return n2 == 0 ? .done(0) : write(p2!, n2) }
        if n2 == 0 { return writeAll(p1!, n1) }
        let room = Int(SY_THREAD_SCRATCH_BYTES)
        if n1 >= room { return writeAll(p1!, n1) }
        let scratch = sy_thread_scratch()!
        let first = min(n2, room - n1)
        scratch.copyMemory(from: p1!, byteCount: n1)
        (scratch + n1).copyMemory(from: p2!, byteCount: first)
        let r = write(UnsafeRawPointer(scratch), n1 + first)
        guard case .done(let n) = r, n == n1 + first, first < n2 else { return r }
        // The gathered record went out: go on with the second region directly.
        let rest: IO = writeAll(p2! + first, n2 - first)
        if case .done(let more) = rest { return IO.done(n + more) }
        return IO.done(n)
    }

    /// Writes records until `n` bytes went out or the socket would block.
    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) -> IO {
        var total = 0
        while total < n {
            let r = write(p + total, n - total)
            guard case .done(let k) = r else { return total > 0 ? .done(total) : r }
            total += k
        }
        return .done(total)
    }

    /// Sends the closing alert, best effort (the socket closes right after either way).
    public func shutdown() {
        if established { _ = SSL_shutdown(ssl) }
        TLSError.clearQueue()
    }

    /// The protocol ALPN settled on, if any.
    public var alpn: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    /// Bytes OpenSSL holds that the next read returns without the socket: decrypted and not yet
    /// read, or read from the socket and not yet decrypted.
    @inline(__always)
    public var hasPending: Bool { SSL_has_pending(ssl) == 1 }

    /// Whether the handshake resumed an earlier session.
    public var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// "TLSv1.3", "TLSv1.2".
    public var version: String { String(cString: SSL_get_version(ssl)) }

    /// The server name the client asked for (server side).
    public var serverName: String? {
        guard let p = SSL_get_servername(ssl, sy_TLSEXT_NAMETYPE_host_name()) else { return nil }
        return String(cString: p)
    }

    /// The host name or address the peer's certificate is checked against (client side; nil
    /// when nothing but the chain is verified).
    public var verifiedName: String? {
        guard let param = SSL_get0_param(ssl) else { return nil }
        if let host = X509_VERIFY_PARAM_get0_host(param, 0) { return String(cString: host) }
        guard let ip = X509_VERIFY_PARAM_get1_ip_asc(param) else { return nil }
        defer { sy_OPENSSL_free(ip) }
        return String(cString: ip)
    }

    /// Whether the kernel took the record layer over for sending (kTLS): the socket then takes
    /// plaintext, and sendfile/splice work again.
    public var kernelSends: Bool {
        guard established, let b = SSL_get_wbio(ssl) else { return false }
        return sy_BIO_get_ktls_send(b) != 0
    }

    /// Whether the kernel decrypts received records (kTLS receive): the socket then reads as
    /// plaintext, with nothing buffered in OpenSSL once SSL_pending is 0.
    public var kernelReceives: Bool {
        guard established, SSL_pending(ssl) == 0, SSL_has_pending(ssl) == 0, let b = SSL_get_rbio(ssl) else { return false }
        return sy_BIO_get_ktls_recv(b) != 0
    }

    // MARK: client sessions

    /// Called by the context's new-session callback; keeps the newest.
    func offer(session: OpaquePointer) {
        if let old = newSession { SSL_SESSION_free(old) }
        newSession = session
    }

    /// The newest resumable session the upstream issued on this connection (ownership passes).
    public func takeSession() -> TLSSession? {
        guard let s = newSession else { return nil }
        newSession = nil
        return TLSSession(taking: s)
    }
}

/// A resumable session for a later connection to the same upstream endpoint.
public final class TLSSession {
    let pointer: OpaquePointer
    init(taking pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }
}
