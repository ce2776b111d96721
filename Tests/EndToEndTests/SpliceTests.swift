// Long Content-Length response bodies move from the upstream socket to the client socket
// through a pipe, in the kernel: the bytes must arrive whole and in order after the buffered
// start of the body, and an upstream dying mid-splice must close the client connection.
import Foundation
import XCTest

final class SpliceTests: EndToEndTestCase {
    func testLongBodyArrivesWholeAndInOrder() throws {
        let size = 3 * 1024 * 1024 + 123
        // A body whose bytes encode their offset, so a reordering or a lost block shows.
        var body = [UInt8](repeating: 0, count: size)
        for i in 0..<size { body[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12) }
        let payload = body
        let server = try startServer { conn, _ in
            while conn.readHead() != nil {
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n")
                conn.send(payload)
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy, timeout: 10)
        for _ in 0..<3 {
            let r = try client.exchange(get("/big"))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.bodyCount, size)
            XCTAssertTrue(r.body == body, "the body arrives byte for byte")
        }
        XCTAssertEqual(try client.exchange(get("/big")).bodyCount, size, "the connection is reused after a spliced body")
        XCTAssertEqual(server.acceptedCount, 1, "the upstream connection went back to the pool")
    }

    func testUpstreamDyingMidSpliceClosesTheClient() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
            conn.send([UInt8](repeating: 120, count: 1_000_000))
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy, timeout: 10)
        try client.send(get("/"))
        let head = try client.readHead()
        XCTAssertEqual(head.status, 200)
        guard case .closed(let extra) = client.waitForClose() else {
            return XCTFail("the client connection stayed open after the upstream died")
        }
        XCTAssertEqual(extra, 1_000_000, "exactly the bytes the upstream sent, then the close")
    }
}

/// Long bodies back to back on several kept-alive connections: a splice turn still queued when
/// an exchange finished once left the next exchange on that connection without turns, and every
/// connection stalled with the upstream socket full (wrk -c10 of 1 MiB bodies: 12 req/s).
final class SpliceTurnTests: EndToEndTestCase {
    func testBackToBackLongBodiesOnManyConnectionsNeverStall() throws {
        let (proxy, _) = try startProxyWithEcho { $0.idleMs = 20_000 }
        let size = 1_048_576
        let failures = NSLock()
        nonisolated(unsafe) var problems: [String] = []
        DispatchQueue.concurrentPerform(iterations: 6) { i in
            do {
                let c = try RawClient(port: proxy.port, timeout: 10)
                for n in 0..<25 {
                    let r = try c.exchange(get("/?bytes=\(size)"))
                    if r.status != 200 || r.bodyCount != size {
                        failures.withLock { problems.append("connection \(i) request \(n): \(r.status), \(r.bodyCount) bytes") }
                        return
                    }
                }
            } catch {
                failures.withLock { problems.append("connection \(i): \(error)") }
            }
        }
        XCTAssertEqual(problems, [], "every body arrived whole, without waiting for a timeout")
    }
}
