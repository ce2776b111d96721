// Responses without Content-Length or chunking: the body ends when the upstream closes, and the
// proxy ends the client's connection with it.
import XCTest

final class CloseDelimitedResponseTests: EndToEndTestCase {
    func testResponseEndingWithTheUpstreamCloseIsRelayedPromptly() throws {
        // No Content-Length, no chunking: the body ends when the upstream closes, and the last
        // bytes and the close usually arrive together.
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        }
        let (proxy) = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        let started = Date()
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "until the end")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5, "the upstream's close ended the response at once")
    }
}
