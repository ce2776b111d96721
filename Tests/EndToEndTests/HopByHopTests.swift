// Hop-by-hop headers (RFC 9110 7.6.1) end at the proxy: Connection and the fields it names,
// Keep-Alive, TE, Trailer, Proxy-Connection never reach the upstream.
import XCTest

final class HopByHopTests: EndToEndTestCase {
    func testHopByHopHeadersAreNotForwarded() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", [
            "Connection: keep-alive, X-Secret-Hop",
            "Keep-Alive: timeout=5",
            "X-Secret-Hop: must-not-pass",
            "TE: trailers",
            "Trailer: X-Checksum",
            "Proxy-Connection: keep-alive",
            "X-End-To-End: passes",
        ])).echo()
        for name in ["Connection", "Keep-Alive", "X-Secret-Hop", "TE", "Trailer", "Proxy-Connection"] {
            XCTAssertFalse(echo.has(name), "\(name) reached the upstream: \(echo.headers)")
        }
        XCTAssertEqual(echo.header("X-End-To-End"), "passes")
    }

    func testHopByHopResponseHeadersAreNotRelayed() throws {
        let server = try startServer { conn, _ in
            while conn.readHead() != nil {
                conn.send("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=30\r\nX-Hop: secret\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok")
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(r.header("X-Hop"))
        XCTAssertNil(r.header("Keep-Alive"))
        XCTAssertEqual(r.header("X-Kept"), "yes")
        XCTAssertEqual(try client.exchange(get("/again")).bodyText, "ok")
    }

    func testConnectionCloseIsNotForwardedAndClosesTheClient() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let r = try client.exchange(get("/", ["Connection: close"]))
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(try r.echo().has("Connection"))
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
        // The upstream connection was not spoiled by the client's close: it is reused.
        let next = try connect(proxy)
        XCTAssertEqual(try next.exchange(get("/")).header("X-Echo-Connection"), "1")
    }
}
