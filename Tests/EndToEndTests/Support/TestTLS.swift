// TLS for end-to-end tests: a certificate authority and certificates made with the `openssl`
// command in the test's directory, and a blocking client session over a RawClient's socket.
import Foundation
import Glibc
internal import COpenSSL
import TestSupport
import XCTest

/// Certificates signed by a CA made for one test.
struct TestPKI {
    let directory: String
    var caCert: String { "\(directory)/ca.pem" }

    /// Makes the CA (`name` lets a test make a second, unrelated one).
    init(directory: String, name: String = "ca") throws {
        self.directory = directory
        try TestPKI.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).pem", "-days", "30",
                             "-subj", "/CN=Switchyard Test CA \(name)"])
        if name != "ca" {
            try FileManager.default.removeItem(atPath: "\(directory)/ca.pem")
            try FileManager.default.copyItem(atPath: "\(directory)/\(name).pem", toPath: "\(directory)/ca.pem")
            try FileManager.default.removeItem(atPath: "\(directory)/ca.key")
            try FileManager.default.copyItem(atPath: "\(directory)/\(name).key", toPath: "\(directory)/ca.key")
        }
        chmod("\(directory)/ca.key", 0o600)
    }

    /// A certificate for `names` (DNS names; an IP literal goes in as an IP entry), signed by
    /// the CA: returns (cert, key) paths.
    func issue(_ file: String, names: [String], days: Int = 30) throws -> (cert: String, key: String) {
        let key = "\(directory)/\(file).key"
        let csr = "\(directory)/\(file).csr"
        let cert = "\(directory)/\(file).pem"
        let ext = "\(directory)/\(file).ext"
        try TestPKI.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", key, "-out", csr, "-subj", "/CN=\(names.first ?? file)"])
        let san = names.map { n in n.first?.isNumber == true ? "IP:\(n)" : "DNS:\(n)" }.joined(separator: ",")
        try "subjectAltName=\(san)\n".write(toFile: ext, atomically: true, encoding: .utf8)
        try TestPKI.openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
                             "-out", cert, "-days", "\(days)", "-extfile", ext])
        chmod(key, 0o600)
        return (cert, key)
    }

    static func openssl(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw TestError("openssl \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}

/// A saved session for resuming, kept as its DER encoding: each use decodes a fresh copy, as a
/// client restarting from a session file would (a session object once used is not offered again).
final class TestTLSSavedSession {
    private let der: [UInt8]
    init(_ p: OpaquePointer) {
        let n = i2d_SSL_SESSION(p, nil)
        var bytes = [UInt8](repeating: 0, count: Int(max(0, n)))
        bytes.withUnsafeMutableBufferPointer { b in
            var out: UnsafeMutablePointer<UInt8>? = b.baseAddress
            _ = i2d_SSL_SESSION(p, &out)
        }
        der = bytes
        SSL_SESSION_free(p)
    }

    /// A new session object (the caller frees it).
    func fresh() -> OpaquePointer? {
        der.withUnsafeBufferPointer { b in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_SSL_SESSION(nil, &p, b.count)
        }
    }
}

/// A client TLS session on a connected blocking socket (its timeouts apply).
final class TestTLSSession {
    private let ctx: OpaquePointer
    let ssl: OpaquePointer

    struct Options {
        var serverName: String? = nil
        var caFile: String? = nil
        var alpn: [String] = []
        /// TLS1_1_VERSION etc.; 0: OpenSSL's defaults.
        var maxVersion: Int32 = 0
        var minVersion: Int32 = 0
        var resume: TestTLSSavedSession? = nil
    }

    static var tls11: Int32 { TLS1_1_VERSION }
    static var tls12: Int32 { TLS1_2_VERSION }

    /// Handshakes on `fd`; throws with OpenSSL's reason when it fails.
    init(fd: Int32, _ o: Options) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TestError("SSL_CTX_new") }
        self.ctx = ctx
        if o.minVersion != 0 || o.maxVersion != 0 {
            // The default security level refuses TLS 1.1 before offering it; level 0 offers it.
            SSL_CTX_set_security_level(ctx, 0)
            _ = SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0")
        }
        if o.minVersion != 0 { _ = sy_SSL_CTX_set_min_proto_version(ctx, o.minVersion) }
        if o.maxVersion != 0 { _ = sy_SSL_CTX_set_max_proto_version(ctx, o.maxVersion) }
        if let ca = o.caFile {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            _ = SSL_CTX_load_verify_locations(ctx, ca, nil)
        }
        if !o.alpn.isEmpty {
            var wire: [UInt8] = []
            for p in o.alpn { wire.append(UInt8(p.utf8.count)); wire += Array(p.utf8) }
            _ = wire.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(ctx, $0.baseAddress, UInt32($0.count)) }
        }
        guard let ssl = SSL_new(ctx) else { SSL_CTX_free(ctx); throw TestError("SSL_new") }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        if let name = o.serverName {
            _ = sy_SSL_set_tlsext_host_name(ssl, name)
            if o.caFile != nil { _ = X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), name, 0) }
        }
        if let s = o.resume, let fresh = s.fresh() {
            SSL_set_session(ssl, fresh)
            SSL_SESSION_free(fresh)
        }
        if SSL_connect(ssl) != 1 {
            let reason = TestTLSSession.queue()
            throw TestError("TLS handshake failed: \(reason)")
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    static func queue() -> String {
        var parts: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            if let r = ERR_reason_error_string(code) { parts.append(String(cString: r)) }
        }
        return parts.isEmpty ? "closed" : parts.joined(separator: "; ")
    }

    func send(_ raw: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < raw.count {
            var n = 0
            guard SSL_write_ex(ssl, raw.baseAddress! + off, raw.count - off, &n) == 1 else {
                throw SocketError.system("SSL_write", errno)
            }
            off += n
        }
    }

    /// Reads what comes; 0 at the end (close_notify or FIN).
    func receive(into raw: UnsafeMutableRawBufferPointer) throws -> Int {
        var n = 0
        if SSL_read_ex(ssl, raw.baseAddress, raw.count, &n) == 1 { return n }
        let e = SSL_get_error(ssl, 0)
        ERR_clear_error()
        if e == SSL_ERROR_ZERO_RETURN { throw SocketError.closed }
        if e == SSL_ERROR_SYSCALL {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw SocketError.timedOut }
            if errno == ECONNRESET { throw SocketError.reset }
            throw SocketError.closed
        }
        if e == SSL_ERROR_WANT_READ { throw SocketError.timedOut }
        throw SocketError.closed
    }

    var resumed: Bool { SSL_session_reused(ssl) == 1 }
    var alpn: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }
    var version: String { String(cString: SSL_get_version(ssl)) }

    /// The peer certificate's subject common name.
    var peerCommonName: String? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        var buf = [CChar](repeating: 0, count: 256)
        guard X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, &buf, 256) > 0 else { return nil }
        return String(cString: buf)
    }

    /// The session to resume with (after a response: TLS 1.3 sends it after the handshake).
    func savedSession() -> TestTLSSavedSession? { SSL_get1_session(ssl).map(TestTLSSavedSession.init) }
}

extension EndToEndTestCase {
    /// `openssl s_server -www` with `server`'s certificate, asking every client for a
    /// certificate from `pki`'s CA; its status page shows the certificate each connection
    /// presented. Returns its port.
    func clientCertificateOrigin(_ pki: TestPKI, _ server: (cert: String, key: String)) throws -> UInt16 {
        let origin = adopt(try ChildProcess(executable: "/usr/bin/openssl", arguments: [
            "s_server", "-accept", "127.0.0.1:0", "-cert", server.cert, "-key", server.key,
            "-Verify", "1", "-CAfile", pki.caCert, "-www"]))
        let line = try XCTUnwrap(origin.waitForStdoutLine { $0.hasPrefix("ACCEPT") }, origin.stderr)
        return try XCTUnwrap(Self.port(after: "ACCEPT ", in: line))
    }
}
