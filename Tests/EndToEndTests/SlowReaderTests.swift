// A client that reads slowly must still get every byte of a long spliced body. The upstream
// sends it in small segments (100 bytes), so the pipe between the sockets fills by its slots (16 buffers)
// long before its byte capacity: a splice into it then says "would block" while the upstream
// socket still holds megabytes, and must not be taken for an empty socket.
import Foundation
import Glibc
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
