// Route matching: host, path prefix, methods, headers, and first-match order.
import Routing
import XCTest

final class MatchingTests: XCTestCase {
    private func routeIndex(_ s: Snapshot, _ r: TestRequest) -> Int { decide(s, r, random: 0).route }

    func testHost() {
        let s = snapshot([
            route("exact", match: Match(hosts: [.exact(b("api.example.com"))])),
            route("wild", match: Match(hosts: [.suffix(b(".example.com"))])),
            route("ipv6", match: Match(hosts: [.exact(b("[::1]"))])),
        ])
        let cases: [(host: String, route: Int)] = [
            ("api.example.com", 0),
            ("API.Example.COM", 0),
            ("api.example.com:8443", 0),
            ("www.example.com", 1),
            ("a.b.EXAMPLE.com:80", 1),
            ("example.com", -1),          // the wildcard needs at least one label
            (".example.com", -1),
            ("example.org", -1),
            ("api.example.com.evil.org", -1),
            ("notexample.com", -1),
            ("[::1]:8080", 2),
            ("[::1]", 2),
            ("api.example.com:", -1),
        ]
        for c in cases {
            XCTAssertEqual(routeIndex(s, TestRequest(host: c.host)), c.route, c.host)
        }
    }

    func testPathPrefix() {
        let s = snapshot([route(match: Match(pathPrefix: b("/api/")))])
        let cases: [(path: String, route: Int)] = [
            ("/api/", 0), ("/api/users", 0), ("/api", -1), ("/API/users", -1), ("/", -1), ("", -1),
        ]
        for c in cases {
            XCTAssertEqual(routeIndex(s, TestRequest(path: c.path)), c.route, c.path)
        }
    }

    func testMethods() {
        let s = snapshot([route(match: Match(methods: [b("GET"), b("HEAD")]))])
        let cases: [(method: String, route: Int)] = [("GET", 0), ("HEAD", 0), ("POST", -1), ("get", -1), ("GETX", -1)]
        for c in cases {
            XCTAssertEqual(routeIndex(s, TestRequest(c.method)), c.route, c.method)
        }
    }

    func testHeaders() {
        let s = snapshot([
            route("both", match: Match(headers: [(b("x-beta"), .present), (b("x-tier"), .equals(b("gold")))])),
            route("present", match: Match(headers: [(b("x-beta"), .present)])),
        ])
        let cases: [(headers: [(String, String)], route: Int)] = [
            ([("X-Beta", ""), ("X-Tier", "gold")], 0),
            ([("x-beta", "1"), ("x-tier", "silver"), ("x-tier", "gold")], 0),  // any value may match
            ([("x-beta", "1"), ("x-tier", "Gold")], 1),                        // values are exact
            ([("x-beta", "1")], 1),
            ([("x-tier", "gold")], -1),
            ([], -1),
        ]
        for (i, c) in cases.enumerated() {
            XCTAssertEqual(routeIndex(s, TestRequest(headers: c.headers)), c.route, "case \(i)")
        }
    }

    func testFirstMatchingRouteWinsAndAllPartsMustMatch() {
        let s = snapshot([
            route("post-api", match: Match(hosts: [.exact(b("example.com"))], pathPrefix: b("/api"), methods: [b("POST")])),
            route("api", match: Match(pathPrefix: b("/api"))),
            route("all"),
            route("never", match: Match(pathPrefix: b("/api"))),
        ])
        XCTAssertEqual(routeIndex(s, TestRequest("POST", path: "/api/x")), 0)
        XCTAssertEqual(routeIndex(s, TestRequest("POST", host: "other.com", path: "/api/x")), 1)
        XCTAssertEqual(routeIndex(s, TestRequest("GET", path: "/api/x")), 1)
        XCTAssertEqual(routeIndex(s, TestRequest("GET", path: "/web")), 2)
    }

    func testNoRouteAndPlainUpstream() {
        let s = snapshot([route(match: Match(pathPrefix: b("/a")), target: .upstream(2))])
        XCTAssertEqual(decide(s, TestRequest(path: "/b"), random: 1), Decision())
        let d = decide(s, TestRequest(path: "/a"), random: 1)
        XCTAssertEqual(d.route, 0)
        XCTAssertEqual(d.upstream, 2)
        XCTAssertEqual(d.variant, -1)
        XCTAssertEqual(d.bucket, -1)
        XCTAssertFalse(d.setCookie)
        XCTAssertNil(d.color)
    }
}
