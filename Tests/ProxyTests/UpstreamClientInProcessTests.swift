// The upstream client in process, against real loopback sockets: a ProxyServer built from a
// hand-made snapshot, its warm-up and health checks (UpstreamProbe through Worker.dial) and a
// proxied request whose first endpoint refuses (Attempts: a failed connect goes to the next).
import Dispatch
import Glibc
import Reactor
import Routing
import Synchronization
import TestSupport
import XCTest
@testable import Proxy

/// A loopback HTTP server on its own threads: each request head is answered by `answer`
/// (status, body, delay ms); connections stay open for the next request.
private final class TinyServer: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    let requests = Mutex(0)
    private let answer: @Sendable (String) -> (Int, String, Int)

    init(answer: @escaping @Sendable (String) -> (Int, String, Int)) throws {
        (fd, port) = try Sockets.bound(listen: true)
        self.answer = answer
        Thread { [self] in self.acceptLoop() }.start()
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            Thread { [self] in self.serve(c) }.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { Glibc.close(c) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            while Sockets.headEnd(buffer) == nil {
                let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
            }
            let end = Sockets.headEnd(buffer)! + 4
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            buffer.removeFirst(end)
            requests.withLock { $0 += 1 }
            let (status, body, delay) = answer(head)
            if delay > 0 {
                // Late: answer after `delay` ms unless the client gave up and closed first.
                var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32(delay)) > 0 { return }
            }
            guard Sockets.send(c, Array("HTTP/1.1 \(status) X\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)) else { return }
        }
    }
}

final class UpstreamClientInProcessTests: XCTestCase {
    private var servers: [TinyServer] = []
    private var proxies: [ProxyServer] = []
    private var refusing: [Int32] = []

    override func tearDown() {
        for p in proxies { p.shutdown() }
        for s in servers { s.close() }
        for fd in refusing { close(fd) }
        super.tearDown()
    }

    private func server(_ answer: @escaping @Sendable (String) -> (Int, String, Int)) throws -> TinyServer {
        let s = try TinyServer(answer: answer)
        servers.append(s)
        return s
    }

    /// A port where nothing listens (bound, not listening: connects are refused).
    private func refusingPort() throws -> UInt16 {
        let (fd, port) = try Sockets.bound(listen: false)
        refusing.append(fd)
        return port
    }

    private func proxy(endpoints: [UInt16], check: HealthCheck? = nil) throws -> ProxyServer {
        var settings = ProxySettings()
        settings.workers = 1
        settings.listeners = [SocketAddress(host: "127.0.0.1", port: 0)!]
        settings.connectMs = 1000
        let pool = Pool(endpoints: endpoints.enumerated().map { Endpoint(host: "127.0.0.1", port: $1, id: $0) })
        var upstream = Upstream(name: "app", kind: .pool(pool))
        upstream.policy.healthCheck = check
        let route = Route(name: "all", match: Match(), rewrite: nil, target: .upstream(0), mirrors: [], variantHeader: nil)
        let p = try ProxyServer(settings: settings, snapshot: Snapshot(version: 1, routes: [route], upstreams: [upstream]))
        p.start()
        proxies.append(p)
        return p
    }

    private func get(_ proxy: ProxyServer, _ path: String) throws -> String {
        let fd = try Sockets.connect(port: proxy.boundAddresses[0].port)
        defer { close(fd) }
        Sockets.setTimeouts(fd, seconds: 5)
        guard Sockets.send(fd, Array("GET \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8)) else { throw TestError("send") }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        // `Connection: close`: the answer ends when the proxy closes.
        while let n = try? chunk.withUnsafeMutableBytes({ try Sockets.receive(fd, into: $0) }), n > 0 {
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func warmUp(_ proxy: ProxyServer, _ targets: [WarmupTarget], requests: Int, timeoutMs: Int = 1000) -> WarmupResult {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex(WarmupResult())
        proxy.warmUp(targets, path: "/warm", requests: requests, timeoutMs: timeoutMs) { r in
            result.withLock { $0 = r }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        return result.withLock { $0 }
    }

    func testAFailedConnectGoesToTheNextEndpoint() throws {
        let good = try server { _ in (200, "from good", 0) }
        let p = try proxy(endpoints: [try refusingPort(), good.port])
        for i in 0..<4 {
            let answer = try get(p, "/\(i)")
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
            XCTAssertTrue(answer.hasSuffix("from good"), answer)
        }
    }

    func testWarmUpReadsEveryAnswerAndStopsAtTheFirstFailure() throws {
        let ok = try server { _ in (200, "warm", 0) }
        let p = try proxy(endpoints: [ok.port])
        let target = WarmupTarget(address: SocketAddress(host: "127.0.0.1", port: ok.port)!, host: "a")
        let fine = warmUp(p, [target], requests: 3)
        XCTAssertNil(fine.failure)
        XCTAssertEqual(fine.latenciesNs.count, 3)
        XCTAssertEqual(ok.requests.withLock { $0 }, 3)

        let refused = warmUp(p, [WarmupTarget(address: SocketAddress(host: "127.0.0.1", port: try refusingPort())!, host: "b")], requests: 2)
        XCTAssertTrue(refused.failure?.contains("connect: Connection refused") == true, refused.failure ?? "nil")

        let failing = try server { _ in (503, "no", 0) }
        let answered = warmUp(p, [WarmupTarget(address: SocketAddress(host: "127.0.0.1", port: failing.port)!, host: "c")], requests: 2)
        XCTAssertEqual(answered.failure, "c answered GET /warm with 503")

        let slow = try server { _ in (200, "late", 1500) }
        let late = warmUp(p, [WarmupTarget(address: SocketAddress(host: "127.0.0.1", port: slow.port)!, host: "d")], requests: 1, timeoutMs: 200)
        XCTAssertTrue(late.failure?.contains("no complete answer within 200 ms") == true, late.failure ?? "nil")
    }

    func testAHealthCheckKeepsTheReasonItFailed() throws {
        let status = Mutex(503)
        let s = try server { _ in (status.withLock { $0 }, "", 0) }
        var check = HealthCheck()
        check.path = "/health"
        check.intervalMs = 50
        check.timeoutMs = 500
        check.unhealthyAfter = 2
        check.healthyAfter = 1
        let p = try proxy(endpoints: [s.port], check: check)
        XCTAssertTrue(waitUntil(timeout: 10) { p.health.health(endpoint: 0) == .unhealthy })
        XCTAssertEqual(p.health.checkFailure(endpoint: 0), "answered 503")
        status.withLock { $0 = 200 }
        XCTAssertTrue(waitUntil(timeout: 10) { p.health.health(endpoint: 0) == .healthy })
        XCTAssertTrue(waitUntil(timeout: 10) { p.health.checkFailure(endpoint: 0) == nil })
    }
}
