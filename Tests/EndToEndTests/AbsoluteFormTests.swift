// Where a request is for: an absolute-form target's authority wins over Host (RFC 9112 3.2.2)
// for routing and for the Host the upstream sees; hosts match without a trailing dot and in any
// case; path prefixes match the normalised path while the path goes upstream as sent; a
// client's X-Forwarded-For and Forwarded are kept only from trustForwardedFrom.
import XCTest

final class AbsoluteFormTests: EndToEndTestCase {
    private func start(extra: String = "") throws -> RunningProxy {
        let a = try startEcho(name: "a")
        let b = try startEcho(name: "b")
        let fast = try startEcho(name: "fast")
        let rest = try startEcho(name: "rest")
        let routes = [
            #"{ "name": "a", "match": { "host": "a.example" }, "upstream": "a" }"#,
            #"{ "name": "b", "match": { "host": "b.example" }, "upstream": "b" }"#,
            #"{ "name": "fast", "match": { "pathPrefix": "/fast" }, "upstream": "fast" }"#,
            #"{ "name": "rest", "upstream": "rest" }"#,
        ]
        let json = routingConfig(upstreams: [("a", pool(a.endpoint)), ("b", pool(b.endpoint)), ("fast", pool(fast.endpoint)),
                                             ("rest", pool(rest.endpoint))], routes: routes)
        return try startProxy(json: extra.isEmpty ? json : json.replacingOccurrences(of: #""workers":"#, with: extra + #", "workers":"#))
    }

    func testAbsoluteFormRoutesByItsAuthority() throws {
        let proxy = try start()
        let r = try connect(proxy).exchange("GET http://a.example/x?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        let echo = try r.echo()
        XCTAssertEqual(echo.name, "a", "routed by Host instead of the target's authority")
        XCTAssertEqual(echo.target, "/x?q=1", "the upstream gets origin-form")
        XCTAssertEqual(echo.headers(named: "Host"), ["a.example"])
        XCTAssertEqual(echo.headers(named: "X-Forwarded-Host"), ["a.example"])
        let port = try connect(proxy).exchange("GET http://A.Example:8080 HTTP/1.1\r\nHost: b.example\r\n\r\n").echo()
        XCTAssertEqual(port.name, "a")
        XCTAssertEqual(port.target, "/")
        XCTAssertEqual(port.headers(named: "Host"), ["A.Example:8080"])
    }

    func testHostsMatchWithoutTrailingDotAndCase() throws {
        let proxy = try start()
        for host in ["a.example.", "A.EXAMPLE.", "a.example.:80"] {
            XCTAssertEqual(try connect(proxy).exchange(get("/", host: host)).echo().name, "a", host)
        }
    }

    func testPathPrefixMatchesTheNormalisedPathAndForwardsItUnchanged() throws {
        let proxy = try start()
        for path in ["/r0/../fast", "/r0/%2e%2e/fast/x", "/%66ast"] {
            let echo = try connect(proxy).exchange(get(path)).echo()
            XCTAssertEqual(echo.name, "fast", path)
            XCTAssertEqual(echo.path, path, "the path is forwarded as sent")
        }
        XCTAssertEqual(try connect(proxy).exchange(get("/fast/../r0")).echo().name, "rest")
        XCTAssertEqual(try connect(proxy).exchange(get("//fast")).echo().name, "rest", "// is kept")
    }

    func testClientForwardingHeadersAreReplacedUnlessTrusted() throws {
        let proxy = try start()
        let echo = try connect(proxy).exchange(get("/", ["X-Forwarded-For: 203.0.113.7", "Forwarded: for=203.0.113.7;proto=https"])).echo()
        XCTAssertEqual(echo.headers(named: "X-Forwarded-For"), ["127.0.0.1"])
        XCTAssertEqual(echo.headers(named: "Forwarded"), ["for=127.0.0.1;proto=http"])
        let plain = try connect(proxy).exchange(get("/")).echo()
        XCTAssertEqual(plain.headers(named: "Forwarded"), [], "no Forwarded is made up when the client sent none")
    }

    func testTrustedClientsForwardingHeadersGetTheProxysElementAppended() throws {
        let proxy = try start(extra: #""trustForwardedFrom": ["127.0.0.1/32", "::1/128"]"#)
        let echo = try connect(proxy).exchange(get("/", ["X-Forwarded-For: 203.0.113.7", "Forwarded: for=203.0.113.7",
                                                         "Forwarded: for=\"[2001:db8::1]\""])).echo()
        XCTAssertEqual(echo.headers(named: "X-Forwarded-For"), ["203.0.113.7, 127.0.0.1"])
        XCTAssertEqual(echo.headers(named: "Forwarded"), ["for=203.0.113.7, for=\"[2001:db8::1]\", for=127.0.0.1;proto=http"])
    }
}
