// SIGTERM: the proxy stops accepting, lets the request in flight finish with its response,
// then exits 0; connections after that are refused.
import Glibc
import XCTest

final class GracefulShutdownTests: EndToEndTestCase {
    func testInFlightRequestFinishesThenExitZero() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send(get("/?delay=500"))
        usleep(150_000)   // the request is at the upstream
        proxy.process.send(signal: SIGTERM)
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close", "the drained connection is closed after its response")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
        XCTAssertEqual(proxy.process.waitForExit(timeout: 5), .exited(0), proxy.process.stderr)
        XCTAssertThrowsError(try RawClient(port: proxy.port)) { error in
            XCTAssertEqual(error as? SocketError, .system("connect", ECONNREFUSED))
        }
    }

    func testNewConnectionsAreRefusedWhileDraining() throws {
        let (proxy, _) = try startProxyWithEcho { $0.workers = 2 }
        let client = try connect(proxy)
        try client.send(get("/?delay=800"))
        usleep(150_000)
        proxy.process.send(signal: SIGTERM)
        usleep(150_000)   // the drain has begun; the slow request is still in flight
        XCTAssertNil(proxy.process.poll(), "the proxy waits for the request in flight")
        // Refused at once (a load balancer in front retries elsewhere), not left in the backlog
        // until the drain ends.
        XCTAssertThrowsError(try RawClient(port: proxy.port)) { error in
            XCTAssertEqual(error as? SocketError, .system("connect", ECONNREFUSED))
        }
        XCTAssertNil(proxy.process.poll(), "the request in flight is still being served")
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
