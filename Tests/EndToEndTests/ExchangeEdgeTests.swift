// Exchanges that end unusually: a client that leaves before its response, an upstream that
// closes a pooled connection, an early response to an unfinished upload, a slow upload, a
// client that half-closes after its request.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ExchangeEdgeTests: EndToEndTestCase {
    func testClientLeavingBeforeTheResponseDoesNotLeakItToTheNextClient() throws {
        // Answers with the path it was asked for, as the echo does; /abandoned only when the
        // test releases it, after its client has left and the next request has been sent.
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let server = try startServer { conn, _ in
            while let head = conn.readHead() {
                let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                if path == "/abandoned" {
                    arrived.signal()
                    _ = release.wait(timeout: .now() + 10)
                }
                let body = #"{ "path": "\#(path)" }"#
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let first = try connect(proxy)
        try first.send(get("/abandoned"))
        XCTAssertEqual(arrived.wait(timeout: .now() + 5), .success, "the request reached the upstream")
        first.close()
        let second = try connect(proxy)
        try second.send(get("/fresh"))
        // The abandoned response comes back while the proxy holds the next client's request.
        XCTAssertTrue(second.waitUntilPeerHasRead(), "the proxy read the next request")
        release.signal()
        let r = try second.readResponse()
        XCTAssertEqual(try r.echo().path, "/fresh", "the abandoned response must not be relayed to another client")
    }

    func testPooledConnectionClosedByTheUpstreamIsReplaced() throws {
        // Answers one request per connection with keep-alive, then closes: the proxy's pooled
        // connection goes stale and the next request needs a new one.
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        for i in 0..<5 {
            let r = try client.exchange(get("/\(i)"))
            XCTAssertEqual(r.status, 200, "request \(i)")
            XCTAssertEqual(r.bodyText, "ok")
        }
        XCTAssertEqual(server.acceptedCount, 5)
    }

    func testPooledConnectionClosedJustAfterReuseIsRetried() throws {
        // The upstream closes each connection only when the second request arrives on it: the
        // proxy learns the connection is dead after it sent the request, and retries elsewhere.
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            _ = conn.readHead()   // then close without answering
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        for i in 0..<4 {
            let r = try client.exchange(get("/\(i)"))
            XCTAssertEqual(r.status, 200, "request \(i): \(r.bodyText)")
        }
    }

    func testEarlyResponseToAnUnfinishedUploadClosesTheConnection() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        try client.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "u", count: 1000))
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.bodyText, "nope")
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close")
        if case .open = client.waitForClose() { XCTFail("the rest of the body would be read as a request") }
    }

    func testSlowUploadIsNotAResponseTimeout() throws {
        // responseMs bounds the upstream's answer, not the client's upload.
        let (proxy, _) = try startProxyWithEcho { $0.responseMs = 300 }
        let client = try connect(proxy)
        try client.send("POST /slow-upload HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n")
        for b in "abcdefgh" {
            // The slow client is what the test simulates: 800 ms of upload, well past responseMs.
            usleep(100_000)
            try client.send(String(b))
        }
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().body, "abcdefgh")
    }

    func testHalfClosedClientStillGetsItsResponse() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send(get("/half?delay=100"))
        client.shutdownWrite()
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().path, "/half")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
    }

    func testIdleClientConnectionIsClosed() throws {
        let (proxy, _) = try startProxyWithEcho { $0.idleMs = 300 }
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).status, 200)
        XCTAssertEqual(client.waitForClose(timeout: 3), .closed(extraBytes: 0))
    }

    func testManyConcurrentClients() throws {
        let (proxy, _) = try startProxyWithEcho { $0.workers = 2 }
        let clients = try (0..<20).map { _ in try connect(proxy) }
        for (i, c) in clients.enumerated() { try c.send(get("/c\(i)?delay=50")) }
        for (i, c) in clients.enumerated() {
            XCTAssertEqual(try c.readResponse().echo().path, "/c\(i)")
        }
    }
}
