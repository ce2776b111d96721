// Request bodies framed by Content-Length or chunked encoding reach the upstream intact.
import TestSupport
import XCTest

final class PostTests: EndToEndTestCase {
    func testPostWithContentLength() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let body = "name=switchyard&kind=proxy"
        let r = try client.exchange("POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        XCTAssertEqual(r.status, 200)
        let echo = try r.echo()
        XCTAssertEqual(echo.method, "POST")
        XCTAssertEqual(echo.body, body)
        XCTAssertEqual(echo.bodyBytes, body.utf8.count)
        XCTAssertEqual(echo.header("Content-Length"), "\(body.utf8.count)")
    }

    func testPostBodySentInPieces() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
        // The rest only once the proxy has read the first piece: the body spans two reads.
        XCTAssertTrue(client.waitUntilPeerHasRead(), "the proxy read the head and the first piece")
        try client.send("world")
        let echo = try client.readResponse().echo()
        XCTAssertEqual(echo.body, "helloworld")
    }

    func testChunkedRequestBody() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        XCTAssertTrue(client.waitUntilPeerHasRead(), "the proxy read the head and the first chunk")
        try client.send("6;ext=1\r\n world\r\n0\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        let echo = try r.echo()
        XCTAssertEqual(echo.body, "hello world")
        XCTAssertEqual(echo.bodyBytes, 11)
        // The connection carries a next request after the chunked one.
        XCTAssertEqual(try client.exchange(get("/next")).status, 200)
    }

    func testChunkedResponseBody() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        let r = try client.exchange(get("/?bytes=300000&chunked=1"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Transfer-Encoding"), "chunked")
        XCTAssertNil(r.header("Content-Length"))
        XCTAssertEqual(r.bodyCount, 300_000)
        XCTAssertTrue(r.body.allSatisfy { $0 == UInt8(ascii: "x") })
        XCTAssertEqual(try client.exchange(get("/next")).status, 200)
    }
}
