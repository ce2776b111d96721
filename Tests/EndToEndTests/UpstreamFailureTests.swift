// Upstreams that refuse, stall, die or lie: the client gets 502/504 from the proxy, a retry on
// the next endpoint when nothing was sent yet, and never a second response on one request.
import Foundation
import Glibc
import XCTest

final class UpstreamFailureTests: EndToEndTestCase {
    func testUpstreamDownGives502() throws {
        let proxy = try startProxy(ProxyConfig(endpoints: [try refusingEndpoint()]))
        let client = try connect(proxy)
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 502)
        XCTAssertEqual(try client.exchange(get("/again")).status, 502, "a bodiless request keeps the connection")
        // Proxy-made answers carry a Date like the upstream's (RFC 9110 6.6.1), an IMF-fixdate
        // within a few seconds of now.
        let date = try XCTUnwrap(r.header("Date"), "\(r.headers)")
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.timeZone = TimeZone(identifier: "GMT")
        parser.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let when = try XCTUnwrap(parser.date(from: date), date)
        XCTAssertLessThan(abs(when.timeIntervalSinceNow), 30, date)
    }

    func testDeadEndpointIsSkippedForTheLiveOne() throws {
        let live = try startEcho(name: "live")
        let proxy = try startProxy(ProxyConfig(endpoints: [try refusingEndpoint(), live.endpoint]))
        let client = try connect(proxy)
        for i in 0..<6 {
            let r = try client.exchange(get("/\(i)"))
            XCTAssertEqual(r.status, 200, "request \(i)")
            XCTAssertEqual(r.header("X-Echo-Name"), "live")
        }
        // A request with a body is retried too: nothing of it had been sent to the dead endpoint.
        for i in 0..<2 {
            let r = try client.exchange("POST /p\(i) HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(try r.echo().body, "abc")
        }
    }

    func testSlowUpstreamGives504() throws {
        let (proxy, _) = try startProxyWithEcho { $0.responseMs = 300 }
        let client = try connect(proxy)
        let started = Date()
        // The upstream would answer after 5 s: far enough past responseMs (300 ms) that a busy
        // machine cannot blur which of the two ended the exchange.
        let r = try client.exchange(get("/?delay=5000"))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 504)
        XCTAssertGreaterThanOrEqual(elapsed, 0.25)
        XCTAssertLessThan(elapsed, 4, "the proxy answered before the upstream did")
    }

    func testSlowClientHeadGives408AndClose() throws {
        let (proxy, echo) = try startProxyWithEcho { $0.headerMs = 300 }
        _ = echo
        let client = try connect(proxy)
        try client.send("GET /slow HTTP/1.1\r\nHost: ")
        let started = Date()
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25)
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
    }

    func testUpstreamClosingAtAcceptGives502() throws {
        let server = try startServer { _, _ in }   // accept, then close
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).status, 502)
    }

    func testUpstreamDyingMidBodyClosesTheClientWithoutASecondResponse() throws {
        // The upstream dies once the client has the response's head: mid-body for certain.
        let headRead = DispatchSemaphore(value: 0)
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "y", count: 1000))
            _ = headRead.wait(timeout: .now() + 5)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        try client.send(get("/"))
        let head = try client.readHead()
        headRead.signal()
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "100000")
        guard case .closed(let extra) = client.waitForClose() else {
            return XCTFail("the client connection stayed open after the upstream died")
        }
        XCTAssertEqual(extra, 1000, "only the body bytes the upstream sent, no second response")
    }

    func testMalformedUpstreamResponseGives502() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nBroken header line\r\n\r\nbody")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).status, 502)
    }

    func testGarbageUpstreamResponseGives502() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("SSH-2.0-OpenSSH_9.2\r\n\r\n")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).status, 502)
    }

    /// A bad chunk size right after a 200 head, in the same read: nothing has reached the client
    /// yet, so it gets a 502 (it got a silent close), and the connection ends.
    func testABadChunkRightAfterTheHeadIsA502() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 502, r.bodyText)
        XCTAssertTrue(r.bodyText.contains("invalid response from upstream"), r.bodyText)
        XCTAssertNotEqual(client.waitForClose(timeout: 5), .open)
    }

    func testOversizedUpstreamResponseHeadGives502() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            // Over the response-head limit (64 KiB by default; see ResponseLimitsTests).
            conn.send("HTTP/1.1 200 OK\r\nX-Huge: " + String(repeating: "h", count: 80_000) + "\r\nContent-Length: 0\r\n\r\n")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).status, 502)
    }

    func testResponseWithTransferEncodingAndContentLengthGives502() throws {
        let server = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            conn.waitForPeerClose(timeout: 2)
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(server.port)"]))
        let client = try connect(proxy)
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 502)
        XCTAssertFalse(r.bodyText.contains("hello"))
    }
}
