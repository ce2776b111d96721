// TLS to upstreams, against a real TLS server (a second Switchyard terminating TLS in front of
// an echo upstream): verification against the right CA, a wrong CA and a wrong name (502 with
// one clear line), `verify: false`, an IP-literal endpoint checked as an address, session
// resumption on new connections, shadow copies over TLS, and what `check` says about TLS files.
import Foundation
import Glibc
import TestSupport
import XCTest

final class UpstreamTLSTests: EndToEndTestCase {
    /// A TLS server for `names`, signed by `pki`, in front of an echo upstream.
    private func tlsOrigin(_ pki: TestPKI, names: [String], idleMs: Int = 5000, admin: Bool = false) throws -> (RunningProxy, EchoUpstream) {
        let echo = try startEcho(name: "origin")
        let cert = try pki.issue("origin-\(names[0])", names: names)
        let json = """
        {
          "workers": 1,
          "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificates": [ { "cert": "\(cert.cert)", "key": "\(cert.key)" } ] } } ],
          "timeouts": { "idleMs": \(idleMs) },
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "default", "upstream": "app" } ]\(admin ? ",\n  \"admin\": { \"address\": \"127.0.0.1:0\" }" : "")
        }
        """
        return (try startProxy(json: json), echo)
    }

    private func front(origin: RunningProxy, tls: String, mirror: Bool = false, admin: Bool = false) throws -> RunningProxy {
        let routes = mirror
            ? #"{ "name": "default", "upstream": "plain", "mirror": [ { "upstream": "secure", "percent": 100 } ] }"#
            : #"{ "name": "default", "upstream": "secure" }"#
        let plain = mirror ? try startEcho(name: "plain").endpoint : "127.0.0.1:9"
        let json = """
        {
          "workers": 1,
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "timeouts": { "connectMs": 2000, "responseMs": 5000 },
          "upstreams": {
            "secure": { "endpoints": ["127.0.0.1:\(origin.port)"], "tls": \(tls) },
            "plain": { "endpoints": ["\(plain)"] }
          },
          "routes": [ \(routes) ]\(admin ? ",\n  \"admin\": { \"address\": \"127.0.0.1:0\" }" : "")
        }
        """
        return try startProxy(json: json)
    }

    private func get(_ proxy: RunningProxy, _ path: String = "/") throws -> HTTPResponse {
        try connect(proxy).exchange("GET \(path) HTTP/1.1\r\nHost: shop.example\r\n\r\n")
    }

    func testTheRightCAVerifiesAndTheRequestIsForwarded() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"])
        let proxy = try front(origin: origin, tls: #"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#)
        let r = try get(proxy, "/hello")
        XCTAssertEqual(r.status, 200, r.bodyText)
        let e = try r.echo()
        XCTAssertEqual(e.path, "/hello")
        // The origin terminated TLS: it says so to its upstream.
        XCTAssertEqual(e.header("X-Forwarded-Proto"), "https")
    }

    func testAnIPLiteralEndpointIsVerifiedAsAnAddress() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["127.0.0.1"])
        let proxy = try front(origin: origin, tls: #"{ "caFile": "\#(pki.caCert)" }"#)
        XCTAssertEqual(try get(proxy).status, 200)
    }

    func testAWrongCAIsA502WithOneLineNamingTheUpstreamAndTheReason() throws {
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"])
        let otherDir = dir + "/other"
        try FileManager.default.createDirectory(atPath: otherDir, withIntermediateDirectories: true)
        let other = try TestPKI(directory: otherDir)
        let proxy = try front(origin: origin, tls: #"{ "serverName": "b.test", "caFile": "\#(other.caCert)" }"#)
        XCTAssertEqual(try get(proxy).status, 502)
        let line = proxy.process.waitForStderrLine(containing: "upstream secure: TLS with b.test")
        XCTAssertNotNil(line, proxy.process.stderr)
        XCTAssertTrue(line?.contains("certificate verify failed") == true, line ?? "")
    }

    func testAWrongHostNameIsA502() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"])
        let proxy = try front(origin: origin, tls: #"{ "serverName": "c.test", "caFile": "\#(pki.caCert)" }"#)
        XCTAssertEqual(try get(proxy).status, 502)
        let line = proxy.process.waitForStderrLine(containing: "upstream secure: TLS with c.test")
        XCTAssertTrue(line?.contains("hostname mismatch") == true, line ?? proxy.process.stderr)
    }

    func testVerifyFalseAcceptsAnyCertificateAndCheckWarns() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"])
        let proxy = try front(origin: origin, tls: #"{ "serverName": "c.test", "verify": false }"#)
        XCTAssertEqual(try get(proxy).status, 200)
        let check = try ChildProcess.run(switchyard: ["check", "--config", proxy.configPath])
        XCTAssertEqual(check.termination, .exited(0))
        XCTAssertTrue(check.stderr.contains("upstreams.secure.tls.verify: certificate verification is off"), check.stderr)
    }

    func testNewConnectionsToAnEndpointResumeTheirSession() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        // The origin closes idle connections quickly: each request after the first needs a new
        // connection, which should not need a full handshake.
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"], idleMs: 100)
        let proxy = try front(origin: origin, tls: #"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#, admin: true)
        let admin = try adminPort(proxy)
        for i in 0..<4 {
            XCTAssertEqual(try get(proxy).status, 200)
            // The origin has closed the pooled connection (and the proxy noticed) before the next.
            try waitForMetrics(adminPort: admin) { $0["switchyard_active_upstream_connections"] == 0 && $0["switchyard_upstream_tls_handshakes_total"] == i + 1 }
        }
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m["switchyard_upstream_tls_handshakes_total"], 4)
        XCTAssertGreaterThanOrEqual(m["switchyard_upstream_tls_resumed_total"], 3, m.text)
    }

    func testShadowCopiesGoOverTLS() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["b.test"], admin: true)
        let originAdmin = try adminPort(origin)
        let proxy = try front(origin: origin, tls: #"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#, mirror: true, admin: true)
        let admin = try adminPort(proxy)
        // Each copy answered before the next is made: the next goes on the same pooled connection.
        for i in 1...3 {
            XCTAssertEqual(try get(proxy).status, 200)
            _ = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes == i }
        }
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m.mirrorCompleted, 3, m.text)
        let o = try waitForMetrics(adminPort: originAdmin) { $0["switchyard_requests_received_total"] == 3 }
        XCTAssertEqual(o["switchyard_tls_handshakes_total"], 1, "one pooled shadow connection")
    }

    func testCheckRefusesAMismatchedKeyAndWarnsAboutReadableKeysAndExpiry() throws {
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let a = try pki.issue("a", names: ["a.test"])
        let b = try pki.issue("b", names: ["b.test"], days: 5)
        chmod(b.key, 0o644)
        func config(_ cert: String, _ key: String) -> String {
            """
            { "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificates": [ { "cert": "\(cert)", "key": "\(key)" } ] } } ],
              "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } }, "routes": [ { "name": "r", "upstream": "app" } ] }
            """
        }
        let bad = try writeFile("bad.json", config(a.cert, b.key))
        let refused = try ChildProcess.run(switchyard: ["check", "--config", bad])
        XCTAssertEqual(refused.termination, .exited(1))
        XCTAssertTrue(refused.stderr.contains("listeners[0].tls.certificates[0]: the key \(b.key) does not match the certificate \(a.cert)"),
                      refused.stderr)
        let warned = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("warn.json", config(b.cert, b.key))])
        XCTAssertEqual(warned.termination, .exited(0), warned.stderr)
        XCTAssertTrue(warned.stderr.contains("key file \"\(b.key)\" has mode 0644"), warned.stderr)
        XCTAssertTrue(warned.stderr.contains("expires in 4 days") || warned.stderr.contains("expires in 5 days"), warned.stderr)
        let version = try writeFile("v.json", config(a.cert, a.key).replacingOccurrences(of: "\"certificates\"", with: "\"minVersion\": \"1.1\", \"certificates\""))
        let old = try ChildProcess.run(switchyard: ["check", "--config", version])
        XCTAssertEqual(old.termination, .exited(1))
        XCTAssertTrue(old.stderr.contains("minVersion: must be \"1.2\" or \"1.3\""), old.stderr)
    }

    /// mTLS: an origin (`openssl s_server`) that requires a client certificate from the CA gets
    /// the configured one; without it the handshake fails (502).
    func testAClientCertificateIsPresentedToTheUpstream() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let server = try pki.issue("server", names: ["b.test"])
        let client = try pki.issue("client", names: ["switchyard.test"])
        let port = try clientCertificateOrigin(pki, server)
        func proxy(_ tls: String) throws -> RunningProxy {
            try startProxy(json: """
            { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
              "upstreams": { "fn": { "endpoints": ["127.0.0.1:\(port)"], "tls": \(tls) } },
              "routes": [ { "name": "default", "upstream": "fn" } ] }
            """)
        }
        let with = try proxy(#"{ "serverName": "b.test", "caFile": "\#(pki.caCert)", "cert": "\#(client.cert)", "key": "\#(client.key)" }"#)
        let r = try get(with)
        XCTAssertEqual(r.status, 200, r.bodyText)
        XCTAssertTrue(r.bodyText.contains("s_server"), r.bodyText)
        let without = try proxy(#"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#)
        XCTAssertEqual(try get(without).status, 502)
        XCTAssertNotNil(without.process.waitForStderrLine(containing: "upstream fn: TLS with b.test"), without.process.stderr)
    }

    /// A green color reached over TLS: the warm-up before the flip goes over TLS (the origin
    /// counts its handshakes and requests), then requests do.
    func testWarmUpOfATLSColorGoesOverTLS() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let (origin, _) = try tlsOrigin(pki, names: ["green.test"], admin: true)
        let originAdmin = try adminPort(origin)
        let blue = try startEcho(name: "blue")
        let socket = try controlSocket()
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "upstreams": { "checkout": {
              "blue": { "endpoints": ["\(blue.endpoint)"] },
              "green": { "endpoints": ["127.0.0.1:\(origin.port)"], "tls": { "serverName": "green.test", "caFile": "\(pki.caCert)" } },
              "live": "blue", "warmup": { "path": "/warm", "requests": 3, "timeoutMs": 3000 } } },
          "routes": [ { "name": "default", "upstream": "checkout" } ],
          "control": { "socket": "\(socket)" } }
        """)
        XCTAssertEqual(try get(proxy).header("X-Echo-Name"), "blue")
        let reply = try ControlLineClient(path: socket).command("flip checkout")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        let warm = try waitForMetrics(adminPort: originAdmin) { $0["switchyard_requests_received_total"] >= 3 }
        XCTAssertEqual(warm["switchyard_requests_received_total"], 3, "the three warm-up GETs")
        XCTAssertEqual(warm["switchyard_tls_handshakes_total"], 3, "each on its own TLS connection")
        let r = try get(proxy)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("X-Echo-Name"), "origin")
    }
}
