// HTTP/1.0 clients: without keep-alive the connection closes after the response; with
// "Connection: keep-alive" it stays open for the next request.
import XCTest

final class HTTP10Tests: EndToEndTestCase {
    func testHTTP10ClientGetsResponseThenClose() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("GET /old HTTP/1.0\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().path, "/old")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
    }

    func testHTTP10KeepAliveStaysOpen() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("GET /one HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Connection")?.lowercased(), "keep-alive")
        try client.send("GET /two HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let second = try client.readResponse()
        XCTAssertEqual(try second.echo().path, "/two")
    }
}
