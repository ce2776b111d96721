// Upgrade (WebSocket): the 101 is relayed, then bytes flow both ways through the tunnel until
// one side closes.
import Foundation
import TestSupport
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

    func testLargeTunnelTransferBothWaysAtOnce() throws {
        // 32 MiB each way at the same time, with small thread stacks: the tunnel streams and
        // does not nest calls per block.
        let echo = try startEcho()
        let proxy = try startProxy(ProxyConfig(endpoints: [echo.endpoint]), stackKB: 256)
        let client = try connect(proxy, timeout: 20)
        try client.send("GET /tunnel HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertEqual(try client.readHead().status, 101)
        let size = 32 * 1024 * 1024
        let received = TunnelReader(fd: client.fd, expected: size)
        let block = [UInt8](repeating: UInt8(ascii: "t"), count: 256 * 1024)
        for _ in 0..<(size / block.count) { try client.send(block) }
        XCTAssertEqual(received.wait(), size)
        XCTAssertNil(proxy.process.poll(), "the proxy is still running")
    }
}

extension EndToEndTestCase {
    /// An upstream that answers every request head with a 101 to `proto`, recording the heads.
    func startServerSwitchingToAnything(_ proto: String) throws -> RawServer {
        try startServer { connection, server in
            while let head = connection.readHead() {
                server.record(head)
                _ = connection.send("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: \(proto)\r\n\r\n")
            }
        }
    }
}

extension UpgradeTests {
    /// `Upgrade: h2c` to an upstream that would answer 101 to anything: the request reaches it
    /// without Upgrade or HTTP2-Settings, so there is nothing to switch, its 101 is refused as
    /// an answer nobody asked for, and HTTP/2 bytes sent after never reach it as a tunnel.
    func testH2cIsNeverTunnelled() throws {
        let server = try startServerSwitchingToAnything("h2c")
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        try client.send("GET /public/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                        + "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 502, "a 101 to a request that asked for no switch")
        let seen = server.recordedHeads
        XCTAssertEqual(seen.count, 1)
        let head = seen.first?.lowercased() ?? ""
        XCTAssertFalse(head.contains("upgrade"), head)
        XCTAssertFalse(head.contains("http2-settings"), head)
        // The same client tries the preface and a request for an internal path on a new connection.
        let again = try connect(proxy)
        try again.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET /internal/admin HTTP/1.1\r\nHost: a\r\n\r\n")
        let refused = try again.readResponse()
        XCTAssertGreaterThanOrEqual(refused.status, 400)
        XCTAssertEqual(server.recordedHeads.count, 1, "nothing more reached the upstream")
    }
}

/// Counts bytes arriving on a socket on a background thread until `expected` or an error.
private final class TunnelReader: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var total = 0

    init(fd: Int32, expected: Int) {
        Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while total < expected {
                guard let n = try? chunk.withUnsafeMutableBytes({ try Sockets.receive(fd, into: $0) }) else { break }
                total += n
            }
            done.signal()
        }.start()
    }

    func wait() -> Int {
        done.wait()
        return total
    }
}
