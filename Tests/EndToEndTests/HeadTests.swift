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
}
