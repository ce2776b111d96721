// A plain GET through the proxy: the upstream sees the method, path and query, the client gets
// the upstream's status, headers and body.
import XCTest

final class GetTests: EndToEndTestCase {
    func testGetReachesUpstreamAndAnswers() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let r = try client.exchange(get("/hello/world?x=1&y=2"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("X-Echo-Name"), "a")
        XCTAssertEqual(r.header("Content-Type"), "application/json")
        let echo = try r.echo()
        XCTAssertEqual(echo.method, "GET")
        XCTAssertEqual(echo.path, "/hello/world")
        XCTAssertEqual(echo.target, "/hello/world?x=1&y=2")
        XCTAssertEqual(echo.header("Host"), "example.test")
        XCTAssertEqual(echo.bodyBytes, 0)
    }

    func testAbsoluteFormTargetReachesUpstreamAsOriginForm() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange("GET http://example.test/abs/path?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n").echo()
        XCTAssertEqual(echo.target, "/abs/path?q=1")
    }

    func testUpstreamStatusPassesThrough() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/?status=404")).status, 404)
        XCTAssertEqual(try client.exchange(get("/?status=503")).status, 503)
        XCTAssertEqual(try client.exchange(get("/")).status, 200, "the connection stays usable")
    }
}
