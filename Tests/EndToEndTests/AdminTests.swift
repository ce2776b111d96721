// The admin listener: /metrics counts what the proxy did, /healthz and /readyz answer.
import XCTest

final class AdminTests: EndToEndTestCase {
    func testMetricsCountRequestsPerRouteAndHealthAnswers() throws {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.routes = [#"{ "name": "web", "upstream": "app" }"#]
        var json = config.json
        json = String(json.dropLast(json.hasSuffix("\n") ? 2 : 1)) + #", "admin": { "address": "127.0.0.1:0" } }"#
        let proxy = try startProxy(json: json)
        guard let line = proxy.process.waitForStderrLine(containing: "admin (/metrics"),
              let adminPort = Self.port(after: "on ", in: line) else {
            return XCTFail("no admin line: \(proxy.process.stderr)")
        }
        let client = try connect(proxy)
        for _ in 0..<3 { XCTAssertEqual(try client.exchange(get("/")).status, 200) }
        XCTAssertEqual(try client.exchange(get("/?status=503")).status, 503)

        // An exchange is counted once its last byte is written, which the client can see first:
        // the scrape waits for the fourth answer to be counted.
        let text = try waitForMetrics(adminPort: adminPort) { $0[#"switchyard_responses_total{class="5xx"}"#] == 1 }.text
        XCTAssertTrue(text.contains("switchyard_requests_received_total 4"), text)
        XCTAssertTrue(text.contains(#"switchyard_route_requests_total{route="web",variant="default"} 4"#), text)
        XCTAssertTrue(text.contains(#"switchyard_responses_total{class="5xx"} 1"#), text)
        XCTAssertTrue(text.contains("# TYPE switchyard_endpoint_in_flight gauge"), text)

        XCTAssertEqual(try RawClient(port: adminPort, timeout: 5).exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        XCTAssertEqual(try RawClient(port: adminPort, timeout: 5).exchange("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        XCTAssertEqual(try RawClient(port: adminPort, timeout: 5).exchange("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n").status, 404)
    }
}
