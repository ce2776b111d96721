// What the client does wrong is the client's: a request body that stops arriving is answered
// 408 and closed, and nothing of it counts against the endpoint (outlier detection, and so the
// guards and rollouts that read the same failures).
import Foundation
import Glibc
import Synchronization
import TestSupport
import XCTest

final class ClientFaultTests: EndToEndTestCase {
    /// `Content-Length: 100` with 10 body bytes in the same packet, then nothing. Before, the
    /// upstream's idle timer fired first: a 504 counted as the endpoint's failure, and five such
    /// anonymous clients ejected it (the next normal request got 503).
    func testAStalledBodyIs408AndNeverTheEndpointsFailure() throws {
        let echo = try startEcho(name: "a")
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ], "admin": { "address": "127.0.0.1:0" },
          "timeouts": { "idleMs": 300, "responseMs": 5000 },
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
        let admin = try adminPort(proxy)
        for i in 0..<6 {
            let c = try connect(proxy)
            try c.send("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
            let r = try c.readResponse(method: "POST")
            XCTAssertEqual(r.status, 408, "client \(i): \(r.bodyText)")
            XCTAssertNotEqual(c.waitForClose(timeout: 5), .open, "client \(i): closed after the 408")
        }
        XCTAssertEqual(try connect(proxy).exchange("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status, 200, "the endpoint stays in its pool")
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m[#"switchyard_endpoint_ejections_total{upstream="app",color="default",endpoint="\#(echo.endpoint)"}"#], 0, m.text)
        XCTAssertEqual(m[#"switchyard_responses_total{class="5xx"}"#], 0, m.text)
        XCTAssertEqual(m[#"switchyard_responses_total{class="4xx"}"#], 6, m.text)
    }

    /// One byte every 100 ms never trips idleMs, but the whole body has timeouts.bodyMs from
    /// its head: the client gets 408, instead of keeping its exchange (and, for a body too large
    /// to be read whole first, its upstream slot) for as long as it keeps dribbling.
    func testADribbledBodyIsCutAtTheWholeBodyDeadline() throws {
        let echo = try startEcho(name: "a")
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "timeouts": { "idleMs": 1000, "bodyMs": 600, "responseMs": 5000 },
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
        let c = try connect(proxy)
        try c.send("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        let fd = c.fd
        let started = Date()
        // The dribbler stops, and is waited for, before the connection closes: a write after
        // that could land on a descriptor another test has reused.
        let stop = Mutex(false)
        let finished = DispatchSemaphore(value: 0)
        let dribbler = Thread {
            defer { finished.signal() }
            for _ in 0..<100 {
                if stop.withLock({ $0 }) { return }
                guard Sockets.send(fd, [UInt8(ascii: "x")]) else { return }
                // The slow client's pace: the next byte after 100 ms, or none once the answer came.
                if readable(fd, withinMs: 100) { return }
            }
        }
        dribbler.start()
        let r = try c.readResponse(method: "POST")
        stop.withLock { $0 = true }
        XCTAssertEqual(finished.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(r.status, 408, r.bodyText)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "cut near bodyMs, not after the 10 s the body would take")
    }

    /// A body that keeps coming, slowly, within the idle time between bytes, still reaches the
    /// upstream whole: the body timer is the client's, re-armed by each read.
    func testASlowButSteadyBodyIsForwarded() throws {
        let echo = try startEcho(name: "a")
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "timeouts": { "idleMs": 1000, "responseMs": 5000 },
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
        let c = try connect(proxy)
        try c.send("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab")
        // A client's pace, well inside idleMs: nothing may come back meanwhile.
        XCTAssertFalse(readable(c.fd, withinMs: 200), "no answer to a body still coming")
        try c.send("cd")
        XCTAssertFalse(readable(c.fd, withinMs: 200), "no answer to a body still coming")
        try c.send("ef")
        let r = try c.readResponse(method: "POST")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().body, "abcdef")
    }

    /// A body that ends on a later read than its head (after a 100 Continue), then an upstream
    /// slower than idleMs: the answer is the upstream's. The body's timer outlived the body,
    /// and the client got 408 "the request body did not arrive in time" while it waited.
    func testAnAnswerSlowerThanIdleMsAfterTheBodyIsNot408() throws {
        let echo = try startEcho(name: "a")
        for buffer in [16_384, 0] {
            let proxy = try startProxy(json: """
            { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ], "limits": { "bufferBodyBytes": \(buffer) },
              "timeouts": { "idleMs": 500, "responseMs": 10000 },
              "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
              "routes": [ { "name": "main", "upstream": "app" } ] }
            """)
            let r = try connect(proxy).sendAfterContinue("POST", "/u?delay=1500", body: "data")
            XCTAssertEqual(r.status, 200, "bufferBodyBytes \(buffer): \(r.bodyText)")
        }
    }
}

/// Whether `fd` has bytes (or its end) to read within `ms`: a wait on the socket, which
/// returns as soon as the proxy answers.
private func readable(_ fd: Int32, withinMs ms: Int32) -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&p, 1, ms) > 0
}
