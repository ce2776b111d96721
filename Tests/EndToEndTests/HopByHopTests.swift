// Hop-by-hop headers (RFC 9110 7.6.1) end at the proxy: Connection and the fields it names,
// Keep-Alive, TE, Proxy-Connection never reach the upstream as sent. Trailer is end-to-end
// (RFC 9110 6.6.2), and TE's one end-to-end meaning, "trailers", is passed on as
// `TE: trailers` (gRPC-style clients need the origin to know).
import XCTest

final class HopByHopTests: EndToEndTestCase {
    func testHopByHopHeadersAreNotForwarded() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", [
            "Connection: keep-alive, X-Secret-Hop",
            "Keep-Alive: timeout=5",
            "X-Secret-Hop: must-not-pass",
            "TE: gzip",
            "Proxy-Connection: keep-alive",
            "X-End-To-End: passes",
        ])).echo()
        for name in ["Connection", "Keep-Alive", "X-Secret-Hop", "TE", "Proxy-Connection"] {
            XCTAssertFalse(echo.has(name), "\(name) reached the upstream: \(echo.headers)")
        }
        XCTAssertEqual(echo.header("X-End-To-End"), "passes")
    }

    func testTETrailersAndTrailerPassEndToEnd() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let echo = try client.exchange(get("/", ["TE: gzip, trailers", "Trailer: X-Checksum"])).echo()
        XCTAssertEqual(echo.headers(named: "TE"), ["trailers"], "\(echo.headers)")
        XCTAssertEqual(echo.headers(named: "Connection").map { $0.lowercased() }, ["te"], "TE is named in Connection")
        XCTAssertEqual(echo.headers(named: "Trailer"), ["X-Checksum"])
        // A response's Trailer field reaches the client with the trailer fields it announces.
        let server = try startServer { conn, _ in
            while conn.readHead() != nil {
                conn.send("HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: 1\r\n\r\n")
            }
        }
        let p2 = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let r = try connect(p2).exchange(get("/"))
        XCTAssertEqual(r.header("Trailer"), "X-Checksum")
        XCTAssertEqual(r.bodyText, "ok")
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
