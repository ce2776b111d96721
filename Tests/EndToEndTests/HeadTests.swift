// HEAD: the response carries the GET's headers (Content-Length included) and no body, so the
// next response on the connection starts right after the head.
import XCTest

final class HeadTests: EndToEndTestCase {
    func testHeadResponseHasNoBody() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("HEAD /?bytes=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try client.readResponse(method: "HEAD")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "1000")
        XCTAssertEqual(head.bodyCount, 0)
        // Had any body byte followed, this would not parse as a status line.
        let next = try client.exchange(get("/after-head"))
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(try next.echo().path, "/after-head")
    }

    func testBodilessResponsesKeepTheConnectionsInStep() throws {
        // HEAD answered with chunked framing, 204 and 304: no body follows any of them, on
        // either side of the proxy.
        let server = try startServer { conn, _ in
            while let head = conn.readHead() {
                if head.hasPrefix("HEAD") {
                    conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                } else if head.contains("/no-content") {
                    conn.send("HTTP/1.1 204 No Content\r\nX-Kind: 204\r\n\r\n")
                } else if head.contains("/not-modified") {
                    conn.send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n")
                } else {
                    conn.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
                }
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        XCTAssertEqual(try client.exchange(get("/no-content")).status, 204)
        XCTAssertEqual(try client.exchange(get("/not-modified")).status, 304)
        let last = try client.exchange(get("/plain"))
        XCTAssertEqual(last.bodyText, "body")
        XCTAssertEqual(server.acceptedCount, 1, "one upstream connection carried all four")
    }
}
