// TLS on a listener, against the real proxy: handshake and requests, SNI among three
// certificates, old protocol versions refused, ALPN, resumption, the handshake timeout, a client
// that sends plain HTTP to a TLS port, Secure cookies, certificates reloaded under a live
// connection (a bad one refused with the old one kept), and certificates rotated after the drop
// to "user" (keys 0640 root:GROUP; one the service user cannot read is named at start).
import Foundation
import Glibc
import XCTest

final class TLSTerminationTests: EndToEndTestCase {
    private struct Setup {
        let pki: TestPKI
        let a: (cert: String, key: String)
        let b: (cert: String, key: String)
        let wild: (cert: String, key: String)
    }

    private func makePKI() throws -> Setup {
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        return Setup(pki: pki,
                     a: try pki.issue("a", names: ["a.test", "127.0.0.1"]),
                     b: try pki.issue("b", names: ["b.test"]),
                     wild: try pki.issue("wild", names: ["*.wild.test"]))
    }

    private func config(echo: EchoUpstream, certificates: [(cert: String, key: String)], extraTimeouts: String = "",
                        routes: String? = nil, admin: Bool = false, user: String? = nil) -> String {
        let certs = certificates.map { "{ \"cert\": \"\($0.cert)\", \"key\": \"\($0.key)\" }" }.joined(separator: ", ")
        return """
        {
          "workers": 2,\(user.map { "\n  \"user\": \"\($0)\"," } ?? "")
          "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificates": [ \(certs) ] } } ],
          "timeouts": { "connectMs": 1000, "idleMs": 5000\(extraTimeouts) },
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ \(routes ?? "{ \"name\": \"default\", \"upstream\": \"app\" }") ]\(admin ? ",\n  \"admin\": { \"address\": \"127.0.0.1:0\" }" : "")
        }
        """
    }

    private func tlsClient(_ proxy: RunningProxy, _ setup: Setup, name: String? = "a.test",
                           configure: (inout TestTLSSession.Options) -> Void = { _ in }) throws -> (RawClient, TestTLSSession) {
        let c = try connect(proxy)
        var o = TestTLSSession.Options(serverName: name, caFile: setup.pki.caCert)
        configure(&o)
        let s = try c.startTLS(o)
        return (c, s)
    }

    func testRequestsOverTLSKeepAliveWithForwardedProtoAndALPN() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let (c, s) = try tlsClient(proxy, setup) { $0.alpn = ["h2", "http/1.1"] }
        XCTAssertEqual(s.alpn, "http/1.1", "only HTTP/1.1 is offered")
        XCTAssertEqual(s.version, "TLSv1.3")
        for i in 0..<3 {
            let r = try c.exchange("GET /n\(i) HTTP/1.1\r\nHost: a.test\r\n\r\n")
            XCTAssertEqual(r.status, 200)
            let e = try r.echo()
            XCTAssertEqual(e.path, "/n\(i)")
            XCTAssertEqual(e.header("X-Forwarded-Proto"), "https")
            XCTAssertEqual(e.connection, 1, "one upstream connection, reused")
        }
        // A POST body crosses too.
        let body = String(repeating: "x", count: 100_000)
        let r = try c.exchange("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().bodyBytes, body.utf8.count)
    }

    func testSNIPicksAmongThreeCertificatesAndUnknownNamesGetTheFirst() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a, setup.b, setup.wild]))
        for (name, expected) in [("a.test", "a.test"), ("b.test", "b.test"), ("x.wild.test", "*.wild.test"),
                                 ("B.TEST", "b.test"), ("other.test", "a.test"), ("deep.x.wild.test", "a.test")] {
            let c = try connect(proxy)
            // Verified against the name only where the certificate is meant to match it.
            let verify = expected != "a.test" || name == "a.test"
            let s = try c.startTLS(.init(serverName: name, caFile: verify ? setup.pki.caCert : nil))
            XCTAssertEqual(s.peerCommonName, expected, "SNI \(name)")
            XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: \(name)\r\n\r\n").status, 200)
        }
        // No SNI at all: the default certificate.
        let c = try connect(proxy)
        let s = try c.startTLS(.init(serverName: nil, caFile: nil))
        XCTAssertEqual(s.peerCommonName, "a.test")
    }

    func testTLS11IsRefusedAndTLS12Works() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let old = try connect(proxy)
        XCTAssertThrowsError(try old.startTLS(.init(serverName: "a.test", maxVersion: TestTLSSession.tls11)))
        let (c, s) = try tlsClient(proxy, setup) { $0.maxVersion = TestTLSSession.tls12 }
        XCTAssertEqual(s.version, "TLSv1.2")
        XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
    }

    func testASecondConnectionResumesTheSessionOnAnyWorker() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], admin: true))
        let admin = try adminPort(proxy)
        for version in [TestTLSSession.tls12, 0] {
            let (first, s1) = try tlsClient(proxy, setup) { $0.maxVersion = version }
            XCTAssertFalse(s1.resumed)
            XCTAssertEqual(try first.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
            let saved = try XCTUnwrap(s1.savedSession())
            first.close()
            // Several connections: with two workers, some land on the worker that did not issue
            // the ticket, and must resume all the same.
            for _ in 0..<4 {
                let (c, s) = try tlsClient(proxy, setup) {
                    $0.maxVersion = version
                    $0.resume = saved
                }
                XCTAssertTrue(s.resumed, "resumed (\(s.version))")
                XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
            }
        }
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_tls_resumed_total"] >= 8 }
        XCTAssertEqual(m["switchyard_tls_resumed_total"], 8)
        XCTAssertEqual(m["switchyard_tls_handshakes_total"], 10)
    }

    func testAClientThatNeverHandshakesIsClosedAtTheHandshakeTimeout() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], extraTimeouts: ", \"handshakeMs\": 300", admin: true))
        let admin = try adminPort(proxy)
        let silent = try connect(proxy)
        XCTAssertEqual(silent.waitForClose(timeout: 5), .closed(extraBytes: 0))
        try waitForMetrics(adminPort: admin) { $0["switchyard_tls_handshake_timeouts_total"] == 1 }
        // Others were served meanwhile and after.
        let (c, _) = try tlsClient(proxy, setup)
        XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
    }

    /// A client that connects and closes without a byte (a port check, a probe) is not a TLS
    /// failure: one line saying it closed first, its own counter, no error line.
    func testAClientThatClosesBeforeTheHandshakeIsNotAnError() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], admin: true))
        let admin = try adminPort(proxy)
        for _ in 0..<3 { try connect(proxy).close() }
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "TLS client 127.0.0.1 closed the connection before the handshake"),
                        proxy.process.stderr)
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_tls_closed_before_handshake_total"] == 3 }
        XCTAssertEqual(m["switchyard_tls_handshake_failures_total"], 0, m.text)
        XCTAssertFalse(proxy.process.stderr.contains("TLS handshake with 127.0.0.1 failed"), proxy.process.stderr)
    }

    func testPlainHTTPOrGarbageOnATLSPortCostsOneLineAndNoStall() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], admin: true))
        let admin = try adminPort(proxy)
        // A live TLS client before and across the garbage.
        let (live, _) = try tlsClient(proxy, setup)
        XCTAssertEqual(try live.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
        var bad: [RawClient] = []
        for i in 0..<20 {
            let c = try connect(proxy)
            try c.send(i % 2 == 0 ? "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" : String(repeating: "\u{16}\u{03}\u{01}garbage", count: 50))
            bad.append(c)
        }
        for c in bad { XCTAssertNotEqual(c.waitForClose(timeout: 5), .open) }
        XCTAssertEqual(try live.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
        try waitForMetrics(adminPort: admin) { $0["switchyard_tls_handshake_failures_total"] == 20 }
        // Rate-limited: far fewer lines than bad clients.
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "TLS handshake with 127.0.0.1 failed"), proxy.process.stderr)
        let lines = proxy.process.stderr.components(separatedBy: "\n").filter { $0.contains("TLS handshake with 127.0.0.1 failed") }
        XCTAssertGreaterThanOrEqual(lines.count, 1)
        XCTAssertLessThanOrEqual(lines.count, 4, proxy.process.stderr)
    }

    /// Plain HTTP on a TLS port gets a plain-text 400 saying so (as NGINX answers), then the
    /// connection closes; garbage is still just closed.
    func testPlainHTTPOnATLSPortIsAnswered400() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let c = try connect(proxy)
        try c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 400)
        XCTAssertTrue(r.bodyText.contains("plain HTTP sent to a TLS listener"), r.bodyText)
        XCTAssertNotEqual(c.waitForClose(timeout: 5), .open)
    }

    func testStickyCookiesSetOverTLSAreSecure() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let route = """
        { "name": "ab", "split": [ { "variant": "a", "upstream": "app", "weight": 50 }, { "variant": "b", "upstream": "app", "weight": 50 } ],
          "sticky": { "cookie": "sy_ab" } }
        """
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], routes: route))
        let (c, _) = try tlsClient(proxy, setup)
        let r = try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        let cookie = try XCTUnwrap(r.header("Set-Cookie"))
        XCTAssertTrue(cookie.hasPrefix("sy_ab="), cookie)
        XCTAssertTrue(cookie.contains("; Secure"), cookie)
    }

    func testCertificatesReloadUnderALiveConnectionAndABadOneIsRefused() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let (old, oldSession) = try tlsClient(proxy, setup, name: "b.test") { $0.caFile = nil }
        XCTAssertEqual(oldSession.peerCommonName, "a.test")
        XCTAssertEqual(try old.exchange("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n").status, 200)

        // b.test's certificate first: new connections get it, the open one goes on.
        let text = config(echo: echo, certificates: [setup.b, setup.a])
        try text.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"), proxy.process.stderr)
        let (_, fresh) = try tlsClient(proxy, setup, name: "b.test")
        XCTAssertEqual(fresh.peerCommonName, "b.test")
        XCTAssertEqual(try old.exchange("GET /again HTTP/1.1\r\nHost: b.test\r\n\r\n").status, 200)

        // A key that is not the certificate's: refused, b.test still served.
        let mismatched = config(echo: echo, certificates: [(setup.b.cert, setup.a.key)])
        try mismatched.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "does not match"), proxy.process.stderr)
        let (c, s) = try tlsClient(proxy, setup, name: "b.test")
        XCTAssertEqual(s.peerCommonName, "b.test")
        XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n").status, 200)
    }

    // MARK: certificates rotated after the drop to "user" (root only)

    /// nobody's group: key files 0640 root:nogroup are readable after the drop.
    private var serviceGroup: gid_t { getpwnam("nobody")?.pointee.pw_gid ?? 65534 }

    /// Makes the test's directory traversable, so the service user can reach the files in it.
    private func startDroppingProxy(_ setup: Setup, echo: EchoUpstream) throws -> RunningProxy {
        XCTAssertEqual(chmod(setup.pki.directory, 0o711), 0)
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a], user: "nobody"))
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "running as nobody"), proxy.process.stderr)
        return proxy
    }

    /// Root's file, which the service group may read (the documented way to rotate keys).
    private func shareWithServiceGroup(_ pair: (cert: String, key: String)) {
        for file in [pair.cert, pair.key] { XCTAssertEqual(chown(file, 0, serviceGroup), 0) }
        XCTAssertEqual(chmod(pair.key, 0o640), 0)
    }

    /// Moves a new pair over the files the config names, as a certificate renewal does.
    private func rotate(_ target: (cert: String, key: String), to fresh: (cert: String, key: String)) {
        XCTAssertEqual(rename(fresh.cert, target.cert), 0)
        XCTAssertEqual(rename(fresh.key, target.key), 0)
    }

    func testAfterTheDropAKeyOnlyRootCanReadIsNamedAtStart() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let setup = try makePKI()   // keys are 0600 root
        let proxy = try startDroppingProxy(setup, echo: try startEcho())
        let line = proxy.process.waitForStderrLine(containing: "reload will not be able to read \(setup.a.key) as user nobody")
        XCTAssertTrue(line?.contains("listeners[0].tls.certificates[0].key: ") == true, proxy.process.stderr)
        XCTAssertTrue(line?.contains("Permission denied; make it readable by group nogroup") == true, proxy.process.stderr)
        XCTAssertEqual(proxy.process.stderr.components(separatedBy: "reload will not be able to read").count, 2,
                       "one line, for the key only (the certificate is 0644): \(proxy.process.stderr)")
    }

    func testAfterTheDropKeysReadableByTheServiceGroupRotateOnReload() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let setup = try makePKI()
        shareWithServiceGroup(setup.a)
        let proxy = try startDroppingProxy(setup, echo: try startEcho())
        let (_, before) = try tlsClient(proxy, setup)
        XCTAssertEqual(before.peerCommonName, "a.test")

        let renewed = try setup.pki.issue("renewed", names: ["renewed.a.test", "a.test"])
        shareWithServiceGroup(renewed)
        rotate(setup.a, to: renewed)
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"), proxy.process.stderr)
        let (c, after) = try tlsClient(proxy, setup)
        XCTAssertEqual(after.peerCommonName, "renewed.a.test", "the renewed certificate, read as nobody")
        XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
        // 0640 root:nogroup is the advice, not a problem.
        XCTAssertFalse(proxy.process.stderr.contains("chmod 600"), proxy.process.stderr)
        XCTAssertFalse(proxy.process.stderr.contains("reload will not be able to read"), proxy.process.stderr)
    }

    func testAfterTheDropAKeyTheServiceCannotReadRefusesTheReloadAndTheOldCertificateServes() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let setup = try makePKI()
        shareWithServiceGroup(setup.a)
        let proxy = try startDroppingProxy(setup, echo: try startEcho())

        let renewed = try setup.pki.issue("renewed", names: ["renewed.a.test", "a.test"])   // key 0600 root
        rotate(setup.a, to: renewed)
        proxy.process.send(signal: SIGHUP)
        let line = proxy.process.waitForStderrLine(containing: "reload refused")
        XCTAssertTrue(line?.contains("cannot read the key \(setup.a.key): Permission denied") == true, proxy.process.stderr)
        XCTAssertNil(proxy.process.poll(), "still running")
        let (c, s) = try tlsClient(proxy, setup)
        XCTAssertEqual(s.peerCommonName, "a.test", "the certificate loaded before")
        XCTAssertEqual(try c.exchange("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
    }

    /// Long bodies cannot be spliced through TLS: they are copied through the pooled buffers,
    /// both ways, with backpressure (memory stays bounded) and every byte accounted for.
    func testLargeBodiesCrossTLSBothWaysWithBoundedMemory() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let (c, _) = try tlsClient(proxy, setup)
        c.setTimeout(30)
        XCTAssertEqual(try c.exchange("GET /warm HTTP/1.1\r\nHost: a.test\r\n\r\n").status, 200)
        let baseline = try XCTUnwrap(proxy.process.residentBytes())
        let sampler = RSSSampler(proxy.process)
        let size = 20 * 1024 * 1024
        try c.send("GET /?bytes=\(size) HTTP/1.1\r\nHost: a.test\r\n\r\n")
        var r = try c.readHead()
        usleep(200_000)   // a client that does not read at once: the proxy must stop reading upstream
        try c.readBody(&r, method: "GET", keepBody: false)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyCount, size)
        try c.send("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: \(size)\r\n\r\n")
        let block = [UInt8](repeating: UInt8(ascii: "t"), count: 256 * 1024)
        for _ in 0..<(size / block.count) { try c.send(block) }
        let up = try c.readResponse()
        let peak = sampler.stop()
        XCTAssertEqual(up.status, 200)
        XCTAssertEqual(try up.echo().bodyBytes, size)
        XCTAssertLessThan(peak - baseline, 16 * 1024 * 1024, "RSS grew from \(baseline) to \(peak) bytes")
    }

    /// Pipelined requests over TLS, in one record and in one record each sent back to back: a
    /// small record read with nothing else in OpenSSL's buffer is taken for a drained socket,
    /// and these must all be answered all the same.
    func testPipelinedRequestsInOneRecordAndInSeparateRecords() throws {
        let setup = try makePKI()
        let echo = try startEcho()
        let proxy = try startProxy(json: config(echo: echo, certificates: [setup.a]))
        let (c, _) = try tlsClient(proxy, setup)
        let request = { (i: Int) in "GET /p\(i) HTTP/1.1\r\nHost: a.test\r\n\r\n" }
        try c.send((0..<5).map(request).joined())
        for i in 0..<5 { XCTAssertEqual(try c.readResponse().echo().path, "/p\(i)") }
        for round in 0..<20 {
            for i in 0..<4 { try c.send(request(round * 10 + i)) }
            for i in 0..<4 { XCTAssertEqual(try c.readResponse().echo().path, "/p\(round * 10 + i)") }
        }
    }
}
