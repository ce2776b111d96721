// SIGTERM: the proxy stops accepting, lets the request in flight finish with its response,
// then exits 0; connections after that are refused.
import Foundation
import Glibc
import TestSupport
import XCTest

final class GracefulShutdownTests: EndToEndTestCase {
    /// An upstream that reports each request's arrival and answers only when released, so a
    /// request is in flight for exactly as long as the test wants.
    private func gatedUpstream(arrived: DispatchSemaphore, release: DispatchSemaphore) throws -> RawServer {
        try startServer { conn, _ in
            while conn.readHead() != nil {
                arrived.signal()
                _ = release.wait(timeout: .now() + 10)
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
            }
        }
    }

    /// Whether a new connection to the proxy is refused: every worker has begun the drain and
    /// the listeners are closed. A connection made before that is closed as idle.
    private func refusesConnections(_ proxy: RunningProxy) -> Bool {
        do {
            _ = try RawClient(port: proxy.port)
            return false
        } catch SocketError.system("connect", ECONNREFUSED) {
            return true
        } catch {
            return false
        }
    }

    func testInFlightRequestFinishesThenExitZero() throws {
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let upstream = try gatedUpstream(arrived: arrived, release: release)
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send(get("/in-flight"))
        XCTAssertEqual(arrived.wait(timeout: .now() + 5), .success, "the request reached the upstream")
        proxy.process.send(signal: SIGTERM)
        // The drain has begun (new connections are refused), and the proxy is still there.
        XCTAssertTrue(waitUntil(timeout: 3, interval: 0.01) { refusesConnections(proxy) }, "the drain began")
        XCTAssertNil(proxy.process.poll(), "the proxy waits for the request in flight")
        release.signal()
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "done")
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close", "the drained connection is closed after its response")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
        XCTAssertEqual(proxy.process.waitForExit(timeout: 5), .exited(0), proxy.process.stderr)
        XCTAssertThrowsError(try RawClient(port: proxy.port)) { error in
            XCTAssertEqual(error as? SocketError, .system("connect", ECONNREFUSED))
        }
    }

    func testReadyzAnswers503FromTheStartOfTheDrainWhileInFlightRequestsFinish() throws {
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let upstream = try gatedUpstream(arrived: arrived, release: release)
        var config = ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"])
        config.admin = #"{ "address": "127.0.0.1:0" }"#
        let proxy = try startProxy(config)
        let adminPort = try adminPort(proxy)
        XCTAssertEqual(try RawClient(port: adminPort).exchange("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        let client = try connect(proxy)
        try client.send(get("/in-flight"))
        XCTAssertEqual(arrived.wait(timeout: .now() + 5), .success, "the request reached the upstream")
        proxy.process.send(signal: SIGTERM)
        let admin = try RawClient(port: adminPort)
        var readiness = 200
        let deadline = Date(timeIntervalSinceNow: 3)
        while readiness == 200 && Date() < deadline {
            let r = try admin.exchange("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
            readiness = r.status
            if r.status == 503 { XCTAssertEqual(r.bodyText, "draining\n") }
        }
        XCTAssertEqual(readiness, 503, "not ready once the drain has begun")
        XCTAssertEqual(try admin.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").status, 200, "still alive")
        XCTAssertNil(proxy.process.poll(), "the request in flight is still being served")
        release.signal()
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "done")
        XCTAssertEqual(proxy.process.waitForExit(timeout: 5), .exited(0), proxy.process.stderr)
    }

    func testNewConnectionsAreRefusedWhileDraining() throws {
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let upstream = try gatedUpstream(arrived: arrived, release: release)
        var config = ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"])
        config.workers = 2
        let proxy = try startProxy(config)
        let client = try connect(proxy)
        try client.send(get("/in-flight"))
        XCTAssertEqual(arrived.wait(timeout: .now() + 5), .success, "the request reached the upstream")
        proxy.process.send(signal: SIGTERM)
        // Refused at once once the drain has begun (a load balancer in front retries
        // elsewhere), not left in the backlog until the drain ends.
        XCTAssertTrue(waitUntil(timeout: 3, interval: 0.01) { refusesConnections(proxy) },
                      "new connections were still accepted during the drain")
        XCTAssertNil(proxy.process.poll(), "the request in flight is still being served")
        release.signal()
        XCTAssertEqual(try client.readResponse().status, 200)
        XCTAssertEqual(proxy.process.waitForExit(timeout: 5), .exited(0), proxy.process.stderr)
    }

    func testTermRightAfterTheListeningLineIsNotLost() throws {
        // Whoever reads "listening on" may stop the proxy at once: the handler is already there.
        let echo = try startEcho()
        for _ in 0..<5 {
            let proxy = try startProxy(ProxyConfig(endpoints: [echo.endpoint]))
            proxy.process.send(signal: SIGTERM)
            let end = proxy.process.waitForExit(timeout: 3)
            XCTAssertEqual(end, .exited(0), end == nil ? proxy.process.diagnostics() : proxy.process.stderr)
        }
    }

    func testIdleProxyExitsPromptly() throws {
        let (proxy, _) = try startProxyWithEcho()
        let idle = try connect(proxy)
        XCTAssertEqual(try idle.exchange(get("/")).status, 200)
        proxy.process.send(signal: SIGTERM)
        XCTAssertEqual(proxy.process.waitForExit(timeout: 3), .exited(0), proxy.process.stderr)
        XCTAssertEqual(idle.waitForClose(timeout: 1), .closed(extraBytes: 0), "idle keep-alive connections are closed")
    }
}
