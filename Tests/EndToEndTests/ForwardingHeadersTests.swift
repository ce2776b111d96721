// Headers the proxy adds: X-Forwarded-For (appended to a trusted client's list, see
// ForwardedTrustTests), X-Forwarded-Proto, X-Forwarded-Host, and X-Request-Id (generated when
// missing, kept when present).
import XCTest

final class ForwardingHeadersTests: EndToEndTestCase {
    func testForwardedHeadersAreSet() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", host: "shop.example:8080")).echo()
        XCTAssertEqual(echo.headers(named: "X-Forwarded-For"), ["127.0.0.1"])
        XCTAssertEqual(echo.headers(named: "X-Forwarded-Proto"), ["http"])
        XCTAssertEqual(echo.headers(named: "X-Forwarded-Host"), ["shop.example:8080"])
        XCTAssertEqual(echo.header("Host"), "shop.example:8080")
    }

    func testForwardedForIsAppendedToTheClientsList() throws {
        let echo = try startEcho(name: "a")
        let proxy = try startProxy(json: ProxyConfig(endpoints: [echo.endpoint]).json
            .replacingOccurrences(of: #""workers":"#, with: #""trustForwardedFrom": ["127.0.0.1/32", "::1/128"], "workers":"#))
        let client = try connect(proxy)
        let report = try client.exchange(get("/", ["X-Forwarded-For: 203.0.113.7, 10.0.0.1"])).echo()
        XCTAssertEqual(report.headers(named: "X-Forwarded-For"), ["203.0.113.7, 10.0.0.1, 127.0.0.1"])
    }

    func testClientForwardedProtoAndHostAreReplaced() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", host: "real.example", ["X-Forwarded-Proto: https", "X-Forwarded-Host: spoofed.example"])).echo()
        XCTAssertEqual(echo.headers(named: "X-Forwarded-Proto"), ["http"])
        XCTAssertEqual(echo.headers(named: "X-Forwarded-Host"), ["real.example"])
    }

    /// X-Real-IP, X-Forwarded-Port and X-Forwarded-Prefix choose what an upstream believes of
    /// the client's address and the path it was reached by: from an untrusted client they are
    /// removed; from a trusted one (trustForwardedFrom) they pass.
    func testOtherForwardingFieldsPassOnlyFromTrustedSources() throws {
        let spoofed = ["X-Real-IP: 10.1.2.3", "X-Forwarded-Port: 8443", "X-Forwarded-Prefix: /admin", "x-real-ip: 10.9.9.9"]
        let (untrusted, _) = try startProxyWithEcho()
        let report = try connect(untrusted).exchange(get("/", spoofed)).echo()
        for name in ["X-Real-IP", "X-Forwarded-Port", "X-Forwarded-Prefix"] {
            XCTAssertEqual(report.headers(named: name), [], "\(name) from an untrusted client")
        }
        let echo = try startEcho(name: "a")
        let trusted = try startProxy(json: ProxyConfig(endpoints: [echo.endpoint]).json
            .replacingOccurrences(of: #""workers":"#, with: #""trustForwardedFrom": ["127.0.0.1/32", "::1/128"], "workers":"#))
        let passed = try connect(trusted).exchange(get("/", spoofed)).echo()
        XCTAssertEqual(passed.headers(named: "X-Real-IP"), ["10.1.2.3", "10.9.9.9"])
        XCTAssertEqual(passed.headers(named: "X-Forwarded-Port"), ["8443"])
        XCTAssertEqual(passed.headers(named: "X-Forwarded-Prefix"), ["/admin"])
    }

    func testRequestIdGeneratedWhenMissing() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let first = try client.exchange(get("/")).echo().headers(named: "X-Request-Id")
        let second = try client.exchange(get("/")).echo().headers(named: "X-Request-Id")
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(second.count, 1)
        let id = first.first ?? ""
        XCTAssertFalse(id.isEmpty)
        XCTAssertTrue(id.allSatisfy { $0.isHexDigit }, id)
        XCTAssertNotEqual(first, second, "each request gets its own id")
    }

    func testRequestIdKeptWhenPresent() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", ["X-Request-Id: client-chosen-42"])).echo()
        XCTAssertEqual(echo.headers(named: "X-Request-Id"), ["client-chosen-42"])
    }
}
