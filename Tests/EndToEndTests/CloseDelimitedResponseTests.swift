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
        // Every timer that could end the response instead fires after 20 s: well apart from
        // "at once" however busy the machine.
        var config = ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"])
        config.responseMs = 20_000
        config.idleMs = 20_000
        let proxy = try startProxy(config)
        let client = try connect(proxy, timeout: 30)
        let started = Date()
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "until the end")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the upstream's close ended the response at once")
    }
}
