// Timeouts by what is idle: keep-alive (idleMs), a tunnel (tunnelMs, HAProxy's `timeout
// tunnel`) and the gaps of a streamed response (readMs, NGINX's `proxy_read_timeout`). With one
// idleMs for everything, an idle WebSocket was cut without a close frame and an event stream
// with an 8 s pause was cut at idleMs 5000.
import Foundation
import Glibc
import XCTest

final class TimeoutKindsTests: EndToEndTestCase {
    private func proxy(_ upstream: String, timeouts: String) throws -> RunningProxy {
        try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "timeouts": { \(timeouts) },
          "upstreams": { "app": { "endpoints": ["\(upstream)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
    }

    /// A WebSocket tunnel through a proxy with `timeouts`, to an echo upstream.
    private func tunnel(timeouts: String) throws -> RawClient {
        let echo = try startEcho()
        let client = try connect(try proxy(echo.endpoint, timeouts: timeouts))
        try client.send("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertEqual(try client.readHead().status, 101)
        return client
    }

    func testAnIdleWebSocketOutlivesIdleMs() throws {
        let client = try tunnel(timeouts: #""idleMs": 300, "tunnelMs": 10000"#)
        // A quiet second, over three times idleMs: the proxy must not close the tunnel in it.
        XCTAssertEqual(client.waitForClose(timeout: 1), .open, "the tunnel outlives idleMs")
        try client.send("ping")
        XCTAssertEqual(String(decoding: try client.read(count: 4), as: UTF8.self), "ping", "the tunnel is still open")
    }

    func testATunnelIdleForTunnelMsIsClosed() throws {
        let client = try tunnel(timeouts: #""idleMs": 60000, "tunnelMs": 300"#)
        XCTAssertNotEqual(client.waitForClose(timeout: 10), .open, "closed after tunnelMs of silence")
    }

    func testAStreamedResponseMayPauseLongerThanIdleMs() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            _ = conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
            // The stream pauses three times idleMs, or until the proxy gives up on it (then
            // the rest goes nowhere and the client's response is cut).
            conn.waitForPeerClose(timeout: 0.9)
            _ = conn.send("2\r\ncd\r\n0\r\n\r\n")
            conn.waitForPeerClose(timeout: 5)
        }
        let p = try proxy("127.0.0.1:\(server.port)", timeouts: #""idleMs": 300, "readMs": 5000"#)
        let r = try connect(p).exchange(get("/events"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "abcd")
    }
}
