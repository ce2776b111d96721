// A client that reads slowly must still get every byte of a long spliced body. The upstream
// sends it in small segments (100 bytes), so the pipe between the sockets fills by its slots (16 buffers)
// long before its byte capacity: a splice into it then says "would block" while the upstream
// socket still holds megabytes, and must not be taken for an empty socket.
import Foundation
import Glibc
import TestSupport
import XCTest

final class SlowReaderTests: EndToEndTestCase {
    func testSlowReaderOfASmallSegmentBodyGetsEveryByte() throws {
        let size = 2 * 1024 * 1024
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            var one: Int32 = 1
            setsockopt(conn.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            guard conn.send("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n") else { return }
            let body = [UInt8](repeating: 97, count: size)
            body.withUnsafeBytes { raw in
                var sent = 0
                while sent < size {
                    let n = Glibc.send(conn.fd, raw.baseAddress! + sent, min(100, size - sent), Int32(MSG_NOSIGNAL))
                    if n <= 0 { return }
                    sent += n
                }
            }
        }
        var config = ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"])
        config.idleMs = 3000
        let proxy = try startProxy(config)
        let client = try connect(proxy, timeout: 10)
        var small: Int32 = 32 * 1024
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try client.send(get("/big"))
        let head = try client.readHead()
        XCTAssertEqual(head.status, 200)
        var got = client.dropBuffered()
        let start = Date()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while got < size {
            // Paced reads of 16 KiB (about 4 MB/s): the proxy's side of the client socket stays
            // full, so the pipe fills while the upstream socket still holds most of the body.
            usleep(4_000)
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(client.fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            got += n
        }
        XCTAssertEqual(got, size, "every byte arrives (stopped after \(Date().timeIntervalSince(start)) s)")
    }
}

/// The sequence that once stalled a download: a pipelining flood, a flood the client does not
/// read, then a reader limited to about 25 MB/s of a 100 MiB body through the echo upstream.
final class FloodThenSlowReaderTests: EndToEndTestCase {
    func testARateLimitedReaderAfterPipeliningFloodsGetsEveryByte() throws {
        let (proxy, _) = try startProxyWithEcho { $0.idleMs = 5000 }
        // 10,000 pipelined GETs on one connection, all answered.
        let first = try connect(proxy, timeout: 20)
        try first.send(String(repeating: get("/"), count: 10_000))
        for _ in 0..<10_000 { XCTAssertEqual(try first.readResponse(keepBody: false).status, 200) }
        first.close()
        // 10,000 pipelined 10 kB GETs written and never read: sent until the proxy stops taking
        // them (its side and ours full), then dropped.
        let second = try Sockets.connect(port: proxy.port)
        let flood = Array(String(repeating: get("/?bytes=10000"), count: 10_000).utf8)
        var offset = 0
        var stalled = 0
        while offset < flood.count && stalled < 50 {
            let n = flood.withUnsafeBytes { send(second, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n > 0 { offset += n; stalled = 0 } else { stalled += 1; usleep(10_000) }   // until it stops taking bytes
        }
        Glibc.close(second)
        // The rate-limited download.
        let size = 104_857_600
        let reader = try connect(proxy, timeout: 10)
        try reader.send(get("/?bytes=\(size)"))
        let head = try reader.readHead()
        XCTAssertEqual(head.status, 200)
        var got = reader.dropBuffered()
        let start = Date()
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while got < size {
            // About 25 MB/s: 256 KiB every 10 ms.
            usleep(10_000)
            let n = chunk.withUnsafeMutableBytes { recv(reader.fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            got += n
        }
        XCTAssertEqual(got, size, "every byte arrives (stopped after \(Date().timeIntervalSince(start)) s)")
    }
}
