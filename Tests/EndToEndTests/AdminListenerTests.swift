// The admin listener serves many connections at once and blocks on none: /healthz answers at
// once behind idle connections and a client that does not read its /metrics, connections are
// kept alive, a head that does not arrive times out, malformed requests get 400, and at the
// connection cap the connection idle the longest is closed.
import Dispatch
import Foundation
import Glibc
import XCTest

final class AdminListenerTests: EndToEndTestCase {
    private func startWithAdmin(maxConnections: Int? = nil, headerMs: Int = 2000) throws -> (RunningProxy, UInt16) {
        let echo = try startEcho()
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.headerMs = headerMs
        config.admin = #"{ "address": "127.0.0.1:0""# + (maxConnections.map { #", "maxConnections": \#($0)"# } ?? "") + " }"
        let proxy = try startProxy(config)
        return (proxy, try adminPort(proxy))
    }

    /// Seconds a fresh connection takes to get /healthz answered.
    private func healthzSeconds(_ port: UInt16) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let r = try RawClient(port: port, timeout: 5).exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "ok\n")
        return seconds
    }

    /// A client that pipelines far more /metrics requests than it reads: its answers fill both
    /// socket buffers (a 4 KiB receive window), so the admin listener's writes to it would block.
    private func slowReader(_ port: UInt16) throws -> RawClient {
        let c = try RawClient(port: port, timeout: 5)
        var small: Int32 = 4096
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let request = Array("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        var sent = 0
        while sent < 5000 {
            let n = request.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n < request.count { break }   // the listener stopped reading: its writes are stuck
            sent += 1
        }
        XCTAssertGreaterThan(sent, 0)
        return c
    }

    private func assertHealthzPrompt(idle: Int) throws {
        let (proxy, port) = try startWithAdmin()
        _ = proxy
        // The same five probes on the unloaded listener first: what "at once" takes on this
        // machine right now. A listener blocked behind the others would take seconds (the
        // probe's 5 s timeout), not a busy machine's extra milliseconds.
        var control = 0.0
        for _ in 0..<5 { control = max(control, try healthzSeconds(port)) }
        let idlers = try (0..<idle).map { _ in try RawClient(port: port, timeout: 5) }
        let reader = try slowReader(port)
        var worst = 0.0
        for _ in 0..<5 { worst = max(worst, try healthzSeconds(port)) }
        print("/healthz with \(idle) idle admin connections and a slow reader: worst of 5 \(String(format: "%.1f", worst * 1000)) ms, \(String(format: "%.1f", control * 1000)) ms without them")
        XCTAssertLessThan(worst, control + 0.3)
        // The slow reader is still served once it reads.
        let first = try reader.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertTrue(first.bodyText.contains("switchyard_requests_total"))
        for c in idlers { c.close() }
    }

    func testHealthzIsPromptBehindThreeIdleConnectionsAndASlowReader() throws {
        try assertHealthzPrompt(idle: 3)
    }

    func testHealthzIsPromptBehindFiftyIdleConnectionsAndASlowReader() throws {
        try assertHealthzPrompt(idle: 50)
    }

    func testKeepAliveAndPipelining() throws {
        let (_, port) = try startWithAdmin()
        let c = try RawClient(port: port, timeout: 5)
        let health = try c.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(health.status, 200)
        XCTAssertNil(health.header("Connection"), "HTTP/1.1 stays open without saying so")
        XCTAssertEqual(try c.exchange("GET /readyz?probe=1 HTTP/1.1\r\nHost: a\r\n\r\n").bodyText, "ready\n")
        let metrics = try c.exchange("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(metrics.header("Content-Type"), "text/plain; version=0.0.4")
        XCTAssertTrue(metrics.bodyText.contains("# TYPE switchyard_requests_total counter"))
        let head = try c.exchange("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "3", "HEAD: the length of the GET answer, no body")
        let post = try c.exchange("POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.bodyText, "GET only\n")
        XCTAssertEqual(try c.exchange("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n").status, 404)

        // Three requests in one write: three answers, in order, on the same connection.
        try c.send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try c.readResponse().bodyText, "ok\n")
        XCTAssertEqual(try c.readResponse().status, 404)
        XCTAssertEqual(try c.readResponse().bodyText, "ready\n")

        // HTTP/1.0 without keep-alive: answered, then closed.
        let old = try c.exchange("GET /healthz HTTP/1.0\r\n\r\n")
        XCTAssertEqual(old.status, 200)
        XCTAssertEqual(old.header("Connection"), "close")
        XCTAssertEqual(c.waitForClose(), .closed(extraBytes: 0))
    }

    func testPartialHeadTimesOutAndSilentConnectionIsClosed() throws {
        let (_, port) = try startWithAdmin(headerMs: 300)
        let partial = try RawClient(port: port, timeout: 5)
        let silent = try RawClient(port: port, timeout: 5)
        let start = Date()
        try partial.send("GET /healthz HTTP/1.1\r\nHo")
        let r = try partial.readResponse()
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(r.status, 408)
        XCTAssertEqual(r.header("Connection"), "close")
        XCTAssertGreaterThanOrEqual(elapsed, 0.25, "not before headerMs")
        XCTAssertLessThan(elapsed, 2)
        XCTAssertEqual(partial.waitForClose(), .closed(extraBytes: 0))
        XCTAssertEqual(silent.waitForClose(), .closed(extraBytes: 0), "a connection that never sends is closed too")
        // Trickled bytes do not extend the head's time.
        let trickle = try RawClient(port: port, timeout: 5)
        let trickleStart = Date()
        for b in "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: one byte at a time, for ever".utf8 {
            guard (try? trickle.send([b])) != nil else { break }
            if trickle.waitForClose(timeout: 0.05) != .open { break }
        }
        XCTAssertNotEqual(trickle.waitForClose(), .open)
        XCTAssertLessThan(Date().timeIntervalSince(trickleStart), 1.5, "closed ~300 ms after the first byte, not after the last")
        XCTAssertLessThan(try healthzSeconds(port), 0.3)
    }

    func testMalformedRequestsGet400AndAreClosed() throws {
        let (_, port) = try startWithAdmin()
        for request in ["garbage\r\n\r\n",
                        "GET /healthz HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
                        "GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
                        "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"] {
            let c = try RawClient(port: port, timeout: 5)
            let r = try c.exchange(request, method: "GET")
            XCTAssertEqual(r.status, 400, request.debugDescription)
            XCTAssertEqual(r.bodyText, "bad request\n")
            XCTAssertEqual(r.header("Connection"), "close")
            XCTAssertEqual(c.waitForClose(), .closed(extraBytes: 0), request.debugDescription)
        }
        XCTAssertLessThan(try healthzSeconds(port), 0.3)
    }

    func testAtTheCapTheConnectionIdleLongestIsClosed() throws {
        let (_, port) = try startWithAdmin(maxConnections: 4)
        var open: [RawClient] = []
        for _ in 0..<4 {
            let c = try RawClient(port: port, timeout: 5)
            XCTAssertEqual(try c.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
            open.append(c)
        }
        // The oldest answered connection makes room for the newest.
        let newest = try RawClient(port: port, timeout: 5)
        XCTAssertEqual(try newest.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        XCTAssertEqual(open[0].waitForClose(), .closed(extraBytes: 0))
        XCTAssertEqual(try open[1].exchange("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200,
                       "the others stay open")
    }
}
