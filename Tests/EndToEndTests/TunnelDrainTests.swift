// Long-lived connections after a blue/green flip: WebSocket tunnels started on the old color are
// counted per color (`show upstreams`, /metrics) and, with `drainTunnelsMs`, closed one by one
// before that deadline; without it, or when the color is live again, they stay open.
import Foundation
import Glibc
import TestSupport
import XCTest

final class TunnelDrainTests: EndToEndTestCase {
    private var proxy: RunningProxy!
    private var control: ControlLineClient!
    private var admin: UInt16 = 0

    /// A proxy whose only upstream `ws` has two echo colors (or `blueEndpoint` as blue), live
    /// blue, with `drainMs` as its `drainTunnelsMs` (none when nil).
    private func start(drainMs: Int?, blueEndpoint: String? = nil) throws {
        let blue = try blueEndpoint ?? startEcho(name: "blue").endpoint
        let green = try startEcho(name: "green")
        let drain = drainMs.map { ", \"drainTunnelsMs\": \($0)" } ?? ""
        let socket = try controlSocket()
        proxy = try startProxy(json: routingConfig(
            upstreams: [("ws", """
                { "blue": { "endpoints": ["\(blue)"] }, "green": { "endpoints": ["\(green.endpoint)"] },
                  "live": "blue"\(drain) }
                """)],
            routes: [#"{ "name": "ws", "upstream": "ws" }"#], controlSocket: socket, admin: true))
        control = try ControlLineClient(path: socket)
        admin = try adminPort(proxy)
    }

    /// A WebSocket-style tunnel through the proxy: the color that answered its 101, after one
    /// round of bytes echoed.
    private func openTunnel(file: StaticString = #filePath, line: UInt = #line) throws -> (RawClient, String?) {
        let client = try connect(proxy)
        try client.send("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        let head = try client.readHead()
        XCTAssertEqual(head.status, 101, file: file, line: line)
        XCTAssertTrue(echoes(client), file: file, line: line)
        return (client, head.header("X-Echo-Name"))
    }

    /// Bytes sent through the tunnel come back.
    private func echoes(_ client: RawClient) -> Bool {
        guard (try? client.send("ping")) != nil, let back = try? client.read(count: 4) else { return false }
        return back == Array("ping".utf8)
    }

    /// `show upstreams`' count for `ws` of `kind` (tunnels, streams) on `color`.
    private func shown(_ kind: String, _ color: String) throws -> Int {
        let reply = try control.command("show upstreams")
        let rows = reply["upstreams"] as? [[String: Any]] ?? []
        let row = rows.first { $0["upstream"] as? String == "ws" }
        return (row?[kind] as? [String: Any])?[color] as? Int ?? -1
    }

    private func flip() throws {
        let reply = try control.command("flip ws")
        XCTAssertNil(reply["error"], "\(reply)")
    }

    func testTunnelsOnTheOldColorAreCountedAndClosedGraduallyBeforeTheDeadline() throws {
        try start(drainMs: 1500)
        let k = 6
        var old: [RawClient] = []
        for _ in 0..<k {
            let (client, color) = try openTunnel()
            XCTAssertEqual(color, "blue")
            old.append(client)
        }
        XCTAssertTrue(try waitUntil { try shown("tunnels", "blue") == k }, "show upstreams counts the tunnels on blue")
        XCTAssertEqual(try shown("tunnels", "green"), 0)
        try waitForMetrics(adminPort: admin) { $0[#"switchyard_upstream_tunnels{upstream="ws",color="blue"}"#] == k }

        let flipped = monotonicSeconds()
        try flip()
        let (fresh, color) = try openTunnel()
        XCTAssertEqual(color, "green", "a new tunnel goes to the new live color")
        // The old tunnels still carry bytes until their turn comes (the first closes about
        // 1500 / (share + 1) ms after the flip).
        XCTAssertGreaterThan(old.filter(echoes).count, 0, "old tunnels work on after the flip")

        let ends = closeTimes(old.map(\.fd), timeout: 10)
        XCTAssertEqual(ends.count, k, "every old tunnel was closed")
        XCTAssertTrue(ends.allSatisfy(\.clean), "closed with a FIN, not a reset")
        let closed = ends.map(\.at)
        let last = closed.max() ?? 0
        XCTAssertLessThan(last - flipped, 1.5 + 1.5, "all gone by the deadline (plus slack for a loaded machine)")
        XCTAssertGreaterThan(last - (closed.min() ?? last), 0.3, "closes spread over the window, not all at once: \(closed)")

        XCTAssertTrue(try waitUntil { try shown("tunnels", "blue") == 0 }, "blue's count goes to 0")
        XCTAssertEqual(try shown("tunnels", "green"), 1)
        try waitForMetrics(adminPort: admin) { $0[#"switchyard_upstream_tunnels{upstream="ws",color="blue"}"#] == 0 }
        XCTAssertTrue(echoes(fresh), "the tunnel on the live color is left alone")
    }

    func testWithoutDrainTunnelsMsNothingIsClosed() throws {
        try start(drainMs: nil)
        let old = try (0..<4).map { _ in try openTunnel().0 }
        try flip()
        XCTAssertEqual(try openTunnel().1, "green")
        XCTAssertEqual(closeTimes(old.map(\.fd), timeout: 2).count, 0, "no tunnel is closed by a flip")
        XCTAssertEqual(old.filter(echoes).count, 4)
        XCTAssertEqual(try shown("tunnels", "blue"), 4, "still counted on the color they started on")
    }

    func testAFlipBackCancelsThePendingDrain() throws {
        // 4 tunnels and a 6 s window: the first close would come 1.2 s after the flip at the
        // earliest (all four on one worker), well after the flip back.
        try start(drainMs: 6000)
        let old = try (0..<4).map { _ in try openTunnel().0 }
        try flip()
        try flip()
        XCTAssertEqual(closeTimes(old.map(\.fd), timeout: 2.5).count, 0, "the color is live again: nothing is closed")
        XCTAssertEqual(old.filter(echoes).count, 4)
    }

    func testAStreamingResponseOnTheOldColorIsCountedAndCutOffByTheDrain() throws {
        // Blue sends a chunked head and one chunk, then holds the body open until the proxy leaves.
        let server = try startServer { connection, _ in
            guard connection.readHead() != nil else { return }
            connection.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            connection.waitForPeerClose(timeout: 20)
        }
        try start(drainMs: 500, blueEndpoint: "127.0.0.1:\(server.port)")
        let client = try connect(proxy)
        try client.send(get("/stream"))
        XCTAssertEqual(try client.readHead().status, 200)
        XCTAssertEqual(try client.read(count: 10), Array("5\r\nhello\r\n".utf8))
        XCTAssertTrue(try waitUntil { try shown("streams", "blue") == 1 }, "show upstreams counts the response in progress")
        try waitForMetrics(adminPort: admin) { $0[#"switchyard_upstream_streams{upstream="ws",color="blue"}"#] == 1 }
        try flip()
        XCTAssertEqual(closeTimes([client.fd], timeout: 5).count, 1, "the response is cut off by the deadline")
        XCTAssertTrue(try waitUntil { try shown("streams", "blue") == 0 })
    }

    /// When each socket saw its peer's close, in `monotonicSeconds`, and whether it was orderly
    /// (not a reset), for those that closed within `timeout` seconds; the bytes that came before
    /// are read and dropped.
    private func closeTimes(_ fds: [Int32], timeout: Double) -> [(at: Double, clean: Bool)] {
        var open = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var times: [(at: Double, clean: Bool)] = []
        let end = monotonicSeconds() + timeout
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !open.isEmpty && monotonicSeconds() < end {
            guard poll(&open, nfds_t(open.count), 20) > 0 else { continue }
            let now = monotonicSeconds()
            open = open.filter { p in
                guard p.revents != 0 else { return true }
                let n = scratch.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)) { return true }
                times.append((now, n == 0))
                return false
            }
        }
        return times
    }
}
