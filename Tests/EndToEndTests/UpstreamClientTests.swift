// The one upstream client, from outside: every kind of request (primary, shadow copy, health
// check) reaches an endpoint with its own upstream's TLS policy, and two upstreams on one
// address with different trust never share a context, a pooled connection or a session.
// Real TLS servers (a Switchyard terminating TLS, `openssl s_server` for client certificates)
// and a test CA made in the test.
import Foundation
import Glibc
import TestSupport
import XCTest

final class UpstreamClientTests: EndToEndTestCase {
    /// A TLS server for `names`, signed by `pki`, in front of an echo upstream.
    private func tlsOrigin(_ pki: TestPKI, names: [String], admin: Bool = false) throws -> RunningProxy {
        let echo = try startEcho(name: "origin")
        let cert = try pki.issue("origin-\(names[0])", names: names)
        return try startProxy(json: """
        {
          "workers": 1,
          "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificates": [ { "cert": "\(cert.cert)", "key": "\(cert.key)" } ] } } ],
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "default", "upstream": "app" } ]\(admin ? ",\n  \"admin\": { \"address\": \"127.0.0.1:0\" }" : "")
        }
        """)
    }

    private func get(_ proxy: RunningProxy, _ path: String) throws -> HTTPResponse {
        try connect(proxy).exchange("GET \(path) HTTP/1.1\r\nHost: shop.example\r\n\r\n")
    }

    private func otherPKI(_ dir: String) throws -> TestPKI {
        let otherDir = dir + "/other"
        try FileManager.default.createDirectory(atPath: otherDir, withIntermediateDirectories: true)
        return try TestPKI(directory: otherDir)
    }

    // MARK: trust is per upstream

    /// `good` (the right CA), `badca` (a CA that did not sign the server) and `noverify` on one
    /// address and SNI. Before endpoint identity held the whole policy, they shared one context
    /// (whichever upstream sorted last) and one pool, and `/badca` answered 200.
    func testUpstreamsOnOneAddressKeepTheirOwnTrustInEveryOrder() throws {
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let other = try otherPKI(dir)
        let origin = try tlsOrigin(pki, names: ["b.test"])
        let policies = [
            ("good", #"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#, 200),
            ("badca", #"{ "serverName": "b.test", "caFile": "\#(other.caCert)" }"#, 502),
            ("noverify", #"{ "serverName": "b.test", "verify": false }"#, 200),
        ]
        // Every declaration order; names are given a prefix that reverses their sort order in
        // half of the runs, so "the last in name order" is each of them at some point.
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        for (run, order) in orders.enumerated() {
            let prefix: (Int) -> String = { run % 2 == 0 ? "u\($0)" : "u\(9 - $0)" }
            let upstreams = order.map { i in
                "\"\(prefix(i))-\(policies[i].0)\": { \"endpoints\": [\"127.0.0.1:\(origin.port)\"], \"tls\": \(policies[i].1) }"
            }.joined(separator: ",\n")
            let routes = order.map { i in
                "{ \"name\": \"\(policies[i].0)\", \"match\": { \"pathPrefix\": \"/\(policies[i].0)\" }, \"upstream\": \"\(prefix(i))-\(policies[i].0)\" }"
            }.joined(separator: ", ")
            let proxy = try startProxy(json: """
            { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
              "timeouts": { "connectMs": 2000, "responseMs": 5000 },
              "upstreams": { \(upstreams) },
              "routes": [ \(routes) ] }
            """)
            // Twice each, interleaved, so a pooled connection or a session made for one could
            // be offered to another.
            for i in order + order {
                let (name, _, expected) = policies[i]
                XCTAssertEqual(try get(proxy, "/\(name)/x").status, expected, "order \(order), run \(run): /\(name)")
            }
            proxy.process.kill()
        }
    }

    /// Two upstreams on one `openssl s_server` that asks for a client certificate, each with its
    /// own: the server's page shows the certificate each request's connection presented.
    func testEachClientCertificateReachesTheUpstreamThatConfiguredIt() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let server = try pki.issue("server", names: ["b.test"])
        let alpha = try pki.issue("alpha", names: ["client-alpha.test"])
        let beta = try pki.issue("beta", names: ["client-beta.test"])
        let port = try clientCertificateOrigin(pki, server)
        func tls(_ c: (cert: String, key: String)) -> String {
            #"{ "serverName": "b.test", "caFile": "\#(pki.caCert)", "cert": "\#(c.cert)", "key": "\#(c.key)" }"#
        }
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "upstreams": {
            "alpha": { "endpoints": ["127.0.0.1:\(port)"], "tls": \(tls(alpha)) },
            "beta": { "endpoints": ["127.0.0.1:\(port)"], "tls": \(tls(beta)) } },
          "routes": [ { "name": "a", "match": { "pathPrefix": "/a" }, "upstream": "alpha" },
                      { "name": "b", "match": { "pathPrefix": "/b" }, "upstream": "beta" } ] }
        """)
        for path in ["/a", "/b", "/a", "/b"] {
            let r = try get(proxy, path)
            XCTAssertEqual(r.status, 200, r.bodyText)
            let page = r.bodyText
            let mine = path == "/a" ? "client-alpha.test" : "client-beta.test"
            let theirs = path == "/a" ? "client-beta.test" : "client-alpha.test"
            XCTAssertTrue(page.contains("Client certificate") && page.contains(mine), "\(path) presented \(mine): \(page.prefix(2000))")
            XCTAssertFalse(page.contains(theirs), "\(path) must not present \(theirs)")
        }
    }

    /// A reload that removes the upstream's `caFile` (so the system store, which does not know
    /// the test CA, decides) retires the pooled connection verified under the old trust: the
    /// next request is refused like a new connection would be, not answered over the old one.
    func testAReloadThatChangesTrustRetiresPooledConnections() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let origin = try tlsOrigin(pki, names: ["b.test"])
        func json(_ tls: String) -> String {
            """
            { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
              "timeouts": { "connectMs": 2000, "responseMs": 5000, "upstreamIdleMs": 60000 },
              "upstreams": { "secure": { "endpoints": ["127.0.0.1:\(origin.port)"], "tls": \(tls) } },
              "routes": [ { "name": "default", "upstream": "secure" } ] }
            """
        }
        let proxy = try startProxy(json: json(#"{ "serverName": "b.test", "caFile": "\#(pki.caCert)" }"#))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange("GET /one HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        // The same listener (as written), so the client's connection stays.
        let reloaded = json(#"{ "serverName": "b.test" }"#)
        try reloaded.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"), proxy.process.stderr)
        XCTAssertEqual(try client.exchange("GET /two HTTP/1.1\r\nHost: a\r\n\r\n").status, 502,
                       "the connection verified under the old CA is not reused")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "certificate verify failed"), proxy.process.stderr)
    }

    // MARK: health checks over TLS

    /// A TLS upstream with a health check stays healthy and serves; its checks speak TLS,
    /// verify the name, and resume the session the endpoint issued.
    func testAHealthCheckOfATLSUpstreamPassesAndResumesItsSession() throws {
        let pki = try TestPKI(directory: try temporaryDirectory())
        let origin = try tlsOrigin(pki, names: ["b.test"])
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "admin": { "address": "127.0.0.1:0" },
          "upstreams": { "secure": { "endpoints": ["127.0.0.1:\(origin.port)"],
                                     "tls": { "serverName": "b.test", "caFile": "\(pki.caCert)" },
                                     "healthCheck": { "path": "/health", "intervalMs": 100 } } },
          "routes": [ { "name": "default", "upstream": "secure" } ] }
        """)
        let admin = try adminPort(proxy)
        let pass = #"switchyard_endpoint_health_checks_total{upstream="secure",color="default",endpoint="127.0.0.1:\#(origin.port)",result="pass"}"#
        let m = try waitForMetrics(adminPort: admin, timeout: 10) { $0[pass] >= 4 && $0["switchyard_upstream_tls_resumed_total"] >= 2 }
        XCTAssertEqual(m[pass.replacingOccurrences(of: "pass", with: "fail")], 0, m.text)
        XCTAssertEqual(m[#"switchyard_endpoint_healthy{upstream="secure",color="default",endpoint="127.0.0.1:\#(origin.port)"}"#], 1, m.text)
        XCTAssertEqual(try get(proxy, "/x").status, 200)
    }

    /// A health check against a server whose certificate the configured CA did not sign fails
    /// with the reason in the log line that takes the endpoint out.
    func testAHealthCheckAgainstAWrongCAFailsWithItsReason() throws {
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let other = try otherPKI(dir)
        let origin = try tlsOrigin(pki, names: ["b.test"])
        let socket = try controlSocket()
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "admin": { "address": "127.0.0.1:0" }, "control": { "socket": "\(socket)" },
          "upstreams": { "secure": { "endpoints": ["127.0.0.1:\(origin.port)"],
                                     "tls": { "serverName": "b.test", "caFile": "\(other.caCert)" },
                                     "healthCheck": { "path": "/health", "intervalMs": 100, "unhealthyAfter": 2 } } },
          "routes": [ { "name": "default", "upstream": "secure" } ] }
        """)
        let line = proxy.process.waitForStderrLine(containing: "is unhealthy")
        XCTAssertNotNil(line, proxy.process.stderr)
        XCTAssertTrue(line?.contains("127.0.0.1:\(origin.port)") == true, line ?? "")
        XCTAssertTrue(line?.contains("TLS") == true && line?.contains("certificate verify failed") == true, line ?? "")
        let admin = try adminPort(proxy)
        let m = try waitForMetrics(adminPort: admin) {
            $0[#"switchyard_endpoint_healthy{upstream="secure",color="default",endpoint="127.0.0.1:\#(origin.port)"}"#] == 0
        }
        XCTAssertGreaterThanOrEqual(m[#"switchyard_endpoint_health_checks_total{upstream="secure",color="default",endpoint="127.0.0.1:\#(origin.port)",result="fail"}"#], 2)
        // `show upstreams` says the same as the metric, and why.
        let shown = try ControlLineClient(path: socket).command("show upstreams")
        let endpoint = try XCTUnwrap((shown["endpoints"] as? [[String: Any]])?.first { $0["upstream"] as? String == "secure" }, "\(shown)")
        XCTAssertEqual(endpoint["health"] as? String, "unhealthy", "\(endpoint)")
        XCTAssertEqual(endpoint["live"] as? Bool, false, "\(endpoint)")
        let why = endpoint["checkFailure"] as? String ?? ""
        XCTAssertTrue(why.contains("certificate verify failed"), "\(endpoint)")
    }

    // MARK: shadow copies

    /// A shadow that answers in 400 ms, allowed 64 copies in flight: 40 copies made at once are
    /// all in flight at once (one connection each), not pipelined behind each other's answers
    /// (32 deep on two connections, the last answered after ~13 s), and the latency recorded
    /// for them is the shadow's, counted from the copy's send.
    func testCopiesToASlowShadowUseTheConcurrencyTheyAreAllowed() throws {
        let primary = try startEcho(name: "primary")
        let shadow = try startEcho(name: "shadow", delayMs: 400)
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "admin": { "address": "127.0.0.1:0" },
          "timeouts": { "responseMs": 20000 },
          "upstreams": { "app": { "endpoints": ["\(primary.endpoint)"] },
                         "shadow": { "endpoints": ["\(shadow.endpoint)"], "maxInFlight": 64 } },
          "routes": [ { "name": "main", "upstream": "app",
                        "mirror": [ { "upstream": "shadow", "percent": 100, "compare": { "status": true, "latency": true } } ] } ] }
        """)
        let admin = try adminPort(proxy)
        let n = 40
        let responses = try sendMany(proxy, count: n, connections: 8, batch: 5) { i in "GET /c/\(i) HTTP/1.1\r\nHost: shop\r\n\r\n" }
        XCTAssertEqual(responses.filter { $0.status == 200 }.count, n)
        let m = try waitForMetrics(adminPort: admin, timeout: 6) { $0.mirrorOutcomes >= n }
        XCTAssertEqual(m.mirrorCompleted, n, m.text)
        let exposition = try Exposition(m.text)
        let labels = ["route": "main", "shadow": "shadow"]
        let count = try XCTUnwrap(exposition.value("switchyard_shadow_response_seconds_count", labels), m.text)
        let sum = try XCTUnwrap(exposition.value("switchyard_shadow_response_seconds_sum", labels), m.text)
        XCTAssertEqual(count, Double(n))
        XCTAssertLessThan(sum / count, 2.0, "mean shadow latency \(sum / count) s for a 0.4 s shadow: copies waited inside the proxy")
        XCTAssertGreaterThanOrEqual(sum / count, 0.39, "the shadow's own 400 ms are in it")
    }
}
