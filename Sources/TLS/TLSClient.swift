// TLS to an upstream: the chain verified against the system store (or a CA file), the host
// name checked, SNI sent, an optional client certificate, and the sessions the upstream issues
// handed to the caller, who keeps one per endpoint so the next connection resumes.
internal import COpenSSL
import Glibc

public struct TLSClientSettings: Sendable, Hashable {
    /// The name sent as SNI and verified; nil: the endpoint's host name.
    public var serverName: String?
    public var caFile: String?
    public var verify: Bool
    public var cert: String?
    public var key: String?

    public init(serverName: String? = nil, caFile: String? = nil, verify: Bool = true, cert: String? = nil, key: String? = nil) {
        self.serverName = serverName
        self.caFile = caFile
        self.verify = verify
        self.cert = cert
        self.key = key
    }
}

/// One client context; shared by every worker (SSL_CTX is safe to share for SSL_new).
public final class TLSClient: @unchecked Sendable {
    public let settings: TLSClientSettings
    private let ctx: OpaquePointer

    public init(_ settings: TLSClientSettings) throws(TLSError) {
        self.settings = settings
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSError.fromQueue("cannot create a TLS context") }
        func fail(_ what: String) -> TLSError {
            SSL_CTX_free(ctx)
            return TLSError.fromQueue(what)
        }
        guard sy_SSL_CTX_set_min_proto_version(ctx, sy_TLS1_2_VERSION()) == 1 else { throw fail("cannot set the TLS versions") }
        _ = sy_SSL_CTX_set_options(ctx, sy_SSL_OP_NO_RENEGOTIATION() | sy_SSL_OP_NO_COMPRESSION() | sy_SSL_OP_IGNORE_UNEXPECTED_EOF())
        _ = sy_SSL_CTX_set_mode(ctx, sy_SSL_MODE_RELEASE_BUFFERS() | sy_SSL_MODE_ENABLE_PARTIAL_WRITE() | sy_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        _ = sy_SSL_CTX_set_read_ahead(ctx, 1)
        if settings.verify {
            SSL_CTX_set_verify(ctx, sy_SSL_VERIFY_PEER(), nil)
            if let ca = settings.caFile {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else { throw fail("cannot load the CA file \(ca)") }
            } else {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else { throw fail("cannot load the system CA store") }
            }
        } else {
            SSL_CTX_set_verify(ctx, sy_SSL_VERIFY_NONE(), nil)
        }
        if let cert = settings.cert, let key = settings.key {
            guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else { throw fail("cannot load the client certificate \(cert)") }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else { throw fail("cannot load the client key \(key)") }
            guard SSL_CTX_check_private_key(ctx) == 1 else { throw fail("the client key \(key) does not match \(cert)") }
        }
        // Sessions go to the connection that received them (no internal store): the caller
        // keeps one per endpoint.
        _ = sy_SSL_CTX_set_session_cache_mode(ctx, sy_SSL_SESS_CACHE_CLIENT() | sy_SSL_SESS_CACHE_NO_INTERNAL_STORE())
        SSL_CTX_sess_set_new_cb(ctx, newSessionCallback)
        self.ctx = ctx
    }

    deinit { SSL_CTX_free(ctx) }

    /// A client session on a connected socket. `host` is the endpoint's host name (SNI and the
    /// verified name unless `serverName` is set); an IP literal is verified as an address and
    /// sent as no SNI (RFC 6066 allows names only).
    ///
    /// `pin` sets the name the certificate must match (OpenSSL's setter; a test passes one that
    /// refuses, to see the connection refused with it).
    public func connect(fd: Int32, host: String, resume: TLSSession?, pin: NamePin = TLSClient.pinWithOpenSSL) -> TLSConnection? {
        guard let ssl = SSL_new(ctx) else {
            TLSError.clearQueue()
            return nil
        }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            TLSError.clearQueue()
            return nil
        }
        SSL_set_connect_state(ssl)
        let name = settings.serverName ?? host
        let isAddress = TLSClient.isIPLiteral(name)
        if !isAddress { _ = sy_SSL_set_tlsext_host_name(ssl, name) }
        if settings.verify {
            // A name or address that cannot be set would verify the chain and not the name:
            // no connection rather than one to whoever holds any certificate of the CA.
            guard let param = SSL_get0_param(ssl), pin(param, name, isAddress) else {
                SSL_free(ssl)
                TLSError.clearQueue()
                return nil
            }
        }
        // A copy: a session object OpenSSL has resumed once is not offered again, while the
        // ticket in it stays good for the next connection.
        if let resume, let copy = SSL_SESSION_dup(resume.pointer) {
            _ = SSL_set_session(ssl, copy)
            SSL_SESSION_free(copy)
        }
        let c = TLSConnection(ssl: ssl, owner: self)
        _ = sy_SSL_set_app_data(ssl, Unmanaged.passUnretained(c).toOpaque())
        return c
    }

    /// Sets in `param` (an X509_VERIFY_PARAM) the host name, or the address when `isAddress`,
    /// the peer's certificate must match; false when it could not be set.
    public typealias NamePin = (_ param: OpaquePointer, _ name: String, _ isAddress: Bool) -> Bool

    public static func pinWithOpenSSL(_ param: OpaquePointer, _ name: String, _ isAddress: Bool) -> Bool {
        (isAddress ? X509_VERIFY_PARAM_set1_ip_asc(param, name) : X509_VERIFY_PARAM_set1_host(param, name, 0)) == 1
    }

    static func isIPLiteral(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }
}

/// A session the upstream issued (with TLS 1.3, after the handshake): goes to its connection,
/// which owns it from here (return 1).
private let newSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let p = sy_SSL_get_app_data(ssl) else { return 0 }
    let c = Unmanaged<TLSConnection>.fromOpaque(p).takeUnretainedValue()
    c.offer(session: session)
    return 1
}
