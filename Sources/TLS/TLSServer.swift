// Terminating TLS on a listener: one SSL_CTX per certificate and per worker (so each worker
// keeps its own session cache, with no lock shared between event loops), the certificate
// chosen by SNI (exact names, then one-label wildcards, else the first certificate), TLS 1.2
// and 1.3 only, the Mozilla "intermediate" ciphers, no renegotiation or compression, ALPN, and
// tickets under the shared rotating keys so any worker resumes any session.
internal import COpenSSL
import Glibc

public struct TLSServerSettings: Sendable, Equatable {
    public struct Certificate: Sendable, Equatable {
        public var cert: String
        public var key: String
        public init(cert: String, key: String) {
            self.cert = cert
            self.key = key
        }
    }

    public var certificates: [Certificate]
    /// "1.2" or "1.3".
    public var minVersion: String
    public var alpn: [String]
    /// TLS 1.2 cipher list (OpenSSL syntax); TLS 1.3 suites stay OpenSSL's defaults.
    public var ciphers: String
    /// Ask OpenSSL to hand the record layer to the kernel (kTLS) after the handshake, where
    /// libssl and the kernel both support it; responses may then be spliced to the client.
    public var kernelTLS = false

    /// Mozilla's "intermediate" configuration (TLS 1.2 part).
    public static let intermediateCiphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

    public init(certificates: [Certificate], minVersion: String = "1.2", alpn: [String] = ["http/1.1"],
                ciphers: String = TLSServerSettings.intermediateCiphers) {
        self.certificates = certificates
        self.minVersion = minVersion
        self.alpn = alpn
        self.ciphers = ciphers
    }
}

/// The contexts of one listener for every worker; immutable once built. A reload builds a new
/// one: connections keep the contexts they started with.
public final class TLSServer: @unchecked Sendable {
    public let settings: TLSServerSettings
    private let perWorker: [WorkerContexts]
    /// Names each certificate serves (lowercased), by certificate.
    public let names: [[String]]

    public init(_ settings: TLSServerSettings, workers: Int) throws(TLSError) {
        guard !settings.certificates.isEmpty else { throw TLSError("no certificates") }
        self.settings = settings
        var names: [[String]] = []
        for c in settings.certificates {
            names.append(try TLSCertificate.inspect(cert: c.cert, key: c.key).names.map { $0.lowercased() })
        }
        self.names = names
        var list: [WorkerContexts] = []
        for _ in 0..<max(1, workers) {
            list.append(try WorkerContexts(settings, names: names))
        }
        perWorker = list
    }

    /// A server session on an accepted socket, for worker `worker`.
    public func accept(fd: Int32, worker: Int) -> TLSConnection? {
        let w = perWorker[worker % perWorker.count]
        guard let ssl = SSL_new(w.contexts[0]) else {
            TLSError.clearQueue()
            return nil
        }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            TLSError.clearQueue()
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSConnection(ssl: ssl, owner: w)
    }

}

/// One worker's contexts, one per certificate, and the SNI table that picks among them.
final class WorkerContexts {
    let contexts: [OpaquePointer]
    private let exact: [String: Int]
    private let wildcard: [String: Int]
    /// ALPN protocols in wire format (length-prefixed).
    let alpnWire: UnsafeMutableBufferPointer<UInt8>

    init(_ settings: TLSServerSettings, names: [[String]]) throws(TLSError) {
        var exact: [String: Int] = [:]
        var wildcard: [String: Int] = [:]
        for (i, list) in names.enumerated() {
            for n in list {
                if n.hasPrefix("*.") {
                    let suffix = String(n.dropFirst(1))   // ".example.com"
                    if wildcard[suffix] == nil { wildcard[suffix] = i }
                } else if exact[n] == nil {
                    exact[n] = i
                }
            }
        }
        self.exact = exact
        self.wildcard = wildcard
        var wire: [UInt8] = []
        for p in settings.alpn where !p.isEmpty && p.utf8.count < 256 {
            wire.append(UInt8(p.utf8.count))
            wire.append(contentsOf: p.utf8)
        }
        alpnWire = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, wire.count))
        _ = alpnWire.initialize(from: wire)
        var made: [OpaquePointer] = []
        do {
            for c in settings.certificates {
                made.append(try WorkerContexts.makeContext(settings, c))
            }
        } catch {
            for ctx in made { SSL_CTX_free(ctx) }
            alpnWire.deallocate()
            throw error
        }
        contexts = made
        let me = Unmanaged.passUnretained(self).toOpaque()
        let alpnLength = wire.count
        for ctx in contexts {
            _ = sy_SSL_CTX_set_tlsext_servername_callback(ctx, serverNameCallback)
            _ = sy_SSL_CTX_set_tlsext_servername_arg(ctx, me)
            if alpnLength > 0 { SSL_CTX_set_alpn_select_cb(ctx, alpnCallback, me) }
        }
        alpnCount = alpnLength
    }

    private(set) var alpnCount = 0

    deinit {
        for ctx in contexts { SSL_CTX_free(ctx) }
        alpnWire.deallocate()
    }

    /// The certificate for a requested name: exact, then wildcard one label deep, else nil.
    func certificateIndex(for name: String) -> Int? {
        let n = name.lowercased()
        if let i = exact[n] { return i }
        if let dot = n.firstIndex(of: "."), let i = wildcard[String(n[dot...])] { return i }
        return nil
    }

    private static func makeContext(_ s: TLSServerSettings, _ c: TLSServerSettings.Certificate) throws(TLSError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError.fromQueue("cannot create a TLS context") }
        func fail(_ what: String) -> TLSError {
            SSL_CTX_free(ctx)
            return TLSError.fromQueue(what)
        }
        let minVersion = s.minVersion == "1.3" ? sy_TLS1_3_VERSION() : sy_TLS1_2_VERSION()
        guard sy_SSL_CTX_set_min_proto_version(ctx, minVersion) == 1,
              sy_SSL_CTX_set_max_proto_version(ctx, sy_TLS1_3_VERSION()) == 1 else { throw fail("cannot set the TLS versions") }
        _ = sy_SSL_CTX_set_options(ctx, sy_SSL_OP_NO_RENEGOTIATION() | sy_SSL_OP_NO_COMPRESSION() | sy_SSL_OP_IGNORE_UNEXPECTED_EOF()
                                     | (s.kernelTLS ? sy_SSL_OP_ENABLE_KTLS() : 0))
        _ = sy_SSL_CTX_set_mode(ctx, sy_SSL_MODE_RELEASE_BUFFERS() | sy_SSL_MODE_ENABLE_PARTIAL_WRITE() | sy_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        _ = sy_SSL_CTX_set_read_ahead(ctx, 1)
        guard SSL_CTX_set_cipher_list(ctx, s.ciphers) == 1 else { throw fail("invalid cipher list \"\(s.ciphers)\"") }
        _ = sy_SSL_CTX_set1_groups_list(ctx, "X25519:prime256v1:secp384r1")
        guard SSL_CTX_use_certificate_chain_file(ctx, c.cert) == 1 else { throw fail("cannot load the certificate \(c.cert)") }
        guard SSL_CTX_use_PrivateKey_file(ctx, c.key, SSL_FILETYPE_PEM) == 1 else { throw fail("cannot load the key \(c.key)") }
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw fail("the key \(c.key) does not match the certificate \(c.cert)") }
        // Sessions: an id cache per worker (TLS 1.2), tickets under the shared keys (both).
        let context: [UInt8] = Array("switchyard".utf8)
        _ = context.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32($0.count)) }
        _ = sy_SSL_CTX_set_session_cache_mode(ctx, sy_SSL_SESS_CACHE_SERVER())
        _ = sy_SSL_CTX_sess_set_cache_size(ctx, 20_000)
        _ = SSL_CTX_set_timeout(ctx, Int(TicketKeys.rotationSeconds))
        _ = sy_SSL_CTX_set_num_tickets(ctx, 1)
        _ = sy_SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback)
        return ctx
    }
}

/// SNI: switches the session to the certificate for the requested name. An unknown name keeps
/// the default certificate (as HAProxy and nginx do), so clients that send an IP or no name work.
private let serverNameCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = { ssl, _, arg in
    guard let ssl, let arg else { return sy_SSL_TLSEXT_ERR_OK() }
    guard let p = SSL_get_servername(ssl, sy_TLSEXT_NAMETYPE_host_name()) else { return sy_SSL_TLSEXT_ERR_OK() }
    let w = Unmanaged<WorkerContexts>.fromOpaque(arg).takeUnretainedValue()
    if let i = w.certificateIndex(for: String(cString: p)), i > 0 {
        _ = SSL_set_SSL_CTX(ssl, w.contexts[i])
    }
    return sy_SSL_TLSEXT_ERR_OK()
}

/// ALPN: the first of our protocols the client also offers; none in common goes on without ALPN.
private let alpnCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                          UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLength, offered, offeredLength, arg in
    guard let arg, let out, let outLength, let offered else { return sy_SSL_TLSEXT_ERR_NOACK() }
    let w = Unmanaged<WorkerContexts>.fromOpaque(arg).takeUnretainedValue()
    var selected: UnsafeMutablePointer<UInt8>?
    var selectedLength: UInt8 = 0
    let r = SSL_select_next_proto(&selected, &selectedLength, w.alpnWire.baseAddress, UInt32(w.alpnCount), offered, offeredLength)
    guard r == OPENSSL_NPN_NEGOTIATED, let selected else { return sy_SSL_TLSEXT_ERR_NOACK() }
    out.pointee = UnsafePointer(selected)
    outLength.pointee = selectedLength
    return sy_SSL_TLSEXT_ERR_OK()
}
