// Upgrade (WebSocket): the 101 is relayed, then bytes flow both ways through the tunnel until
// one side closes.
import XCTest

final class UpgradeTests: EndToEndTestCase {
    func testWebSocketUpgradeEchoesBytesBothWays() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("""
            GET /chat HTTP/1.1\r
            Host: a\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            \r\n
            """)
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 101)
        XCTAssertEqual(r.header("Upgrade")?.lowercased(), "websocket")
        XCTAssertEqual(r.header("Connection")?.lowercased(), "upgrade")
        for message in ["ping", "a longer frame of tunnel bytes", String(repeating: "z", count: 100_000)] {
            try client.send(message)
            let back = try client.read(count: message.utf8.count)
            XCTAssertEqual(String(decoding: back, as: UTF8.self), message)
        }
        client.shutdownWrite()
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0), "the tunnel ends when the client closes")
    }
}
