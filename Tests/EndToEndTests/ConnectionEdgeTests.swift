// The proxy at its edges: bursts of silent and half-sent connections closed on time (also
// after the event loop slept longer than its timer wheel's horizon), accepting that rests
// while out of descriptors instead of spinning, and memory that does not grow with churn.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ConnectionEdgeTests: EndToEndTestCase {
    /// CPU seconds (user + system) the process has used.
    private func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Fields after the command: state is 0, utime 11, stime 12 (clock ticks).
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func openSilent(_ proxy: RunningProxy, count: Int) throws -> [Int32] {
        var fds: [Int32] = []
        for _ in 0..<count { fds.append(try Sockets.connect(port: proxy.port)) }
        return fds
    }

    /// Whether the peer closed (or reset) `fd` without sending anything; false when still open.
    private func isClosed(_ fd: Int32) -> Bool {
        var b: UInt8 = 0
        let n = recv(fd, &b, 1, Int32(MSG_DONTWAIT))
        if n == 0 { return true }
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        return false
    }

    /// The first connections of a burst that arrives after the loop slept with no timer for
    /// longer than the timer wheel's horizon (10.24 s) were never timed out; partial heads
    /// never got their 408.
    func testABurstAfterALongIdleIsTimedOutOnTime() throws {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.headerMs = 1000
        config.idleMs = 2000
        let proxy = try startProxy(config)
        // The condition under test is the idle loop itself: for longer than the wheel's horizon
        // nothing may reach the proxy, so this is the one wait that must be a plain pause.
        Thread.sleep(forTimeInterval: 11)
        let start = Date()
        let silent = try openSilent(proxy, count: 100)
        var partial: [RawClient] = []
        for _ in 0..<50 {
            let c = try connect(proxy, timeout: 5)
            try c.send("GET / HTTP/1.1\r\nHost: a\r\n")
            partial.append(c)
        }
        defer { for fd in silent { Glibc.close(fd) } }
        for c in partial {
            let head = try c.readHead()
            XCTAssertEqual(head.status, 408)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 4, "408s for partial heads after headerMs (1 s)")
        let closedAll = waitUntil(timeout: 6) { silent.allSatisfy { self.isClosed($0) } }
        XCTAssertTrue(closedAll, "\(silent.filter { !self.isClosed($0) }.count) of 100 silent connections still open")
        XCTAssertLessThan(Date().timeIntervalSince(start), 6, "silent connections closed after idleMs (2 s)")
    }

    /// Rounds of silent connections do not accumulate.
    func testRoundsOfSilentConnectionsAreAllClosed() throws {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.idleMs = 500
        config.workers = 2
        let proxy = try startProxy(config)
        for round in 0..<3 {
            let fds = try openSilent(proxy, count: 100)
            defer { for fd in fds { Glibc.close(fd) } }
            XCTAssertTrue(waitUntil(timeout: 5) { fds.allSatisfy { self.isClosed($0) } }, "round \(round)")
        }
    }

    /// Out of descriptors, accepting rests and a timer resumes it: the proxy does not spin on
    /// a listener it cannot accept from, and serves again once descriptors are free.
    func testOutOfDescriptorsAcceptRestsAndServesAgain() throws {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.idleMs = 60_000
        config.headerMs = 60_000
        config.admin = "{ \"address\": \"127.0.0.1:0\" }"
        let proxy = try startProxy(config, openFiles: 64)
        let admin = try adminPort(proxy)
        // More than the proxy can hold: the rest wait in the listen queue.
        let held = try openSilent(proxy, count: 120)
        var released = false
        defer { if !released { for fd in held { Glibc.close(fd) } } }
        guard let before = cpuSeconds(proxy.process.pid) else { return XCTFail("no /proc stat") }
        let window = Date()
        // Long enough to see a spin (it burned 95% of a core); the proxy is expected to be idle.
        Thread.sleep(forTimeInterval: 2)
        guard let after = cpuSeconds(proxy.process.pid) else { return XCTFail("no /proc stat") }
        let share = (after - before) / Date().timeIntervalSince(window)
        print("CPU share while out of descriptors: \(share)")
        XCTAssertLessThan(share, 0.3, "CPU share while out of descriptors: \(share)")
        for fd in held { Glibc.close(fd) }
        released = true
        let served = waitUntil(timeout: 10) {
            guard let c = try? self.connect(proxy, timeout: 2), let r = try? c.exchange(get("/")) else { return false }
            return r.status == 200
        }
        XCTAssertTrue(served, "the proxy serves again once descriptors are free")
        let metrics = try RawClient(port: admin, timeout: 5).exchange("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").bodyText
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("switchyard_accept_pauses_total ") }
        let pauses = line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        XCTAssertGreaterThan(pauses, 0, "accept pauses counted")
    }

    /// Memory held per closed connection goes back: RSS after 100k churned connections stays
    /// within 2x of the start (it grew with every connection for the length of the idle timeout).
    func testMemoryDoesNotGrowUnderConnectionChurn() throws {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.idleMs = 60_000
        config.workers = 2
        let proxy = try startProxy(config)
        let request = Array(get("/?bytes=10").utf8)
        let churn: @Sendable (Int) -> Int = { count in
            var ok = 0
            var buf = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<count {
                guard let fd = try? Sockets.connect(port: proxy.port) else { continue }
                Sockets.setTimeouts(fd, seconds: 5)
                _ = request.withUnsafeBytes { try? Sockets.sendAll(fd, $0) }
                var got = 0
                while got < 10 {   // the body is the last 10 bytes; the head comes first
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                    if n <= 0 { break }
                    if buf[n - 1] == UInt8(ascii: "x") { got = 10 }
                }
                if got == 10 { ok += 1 }
                Glibc.close(fd)
            }
            return ok
        }
        XCTAssertEqual(churn(2000), 2000)
        guard let start = proxy.process.residentBytes() else { return XCTFail("no RSS") }
        let done = NSLock()
        nonisolated(unsafe) var answered = 0
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let n = churn(25_000)
            done.withLock { answered += n }
        }
        XCTAssertGreaterThan(answered, 99_000, "nearly every churned request answered")
        guard let end = proxy.process.residentBytes() else { return XCTFail("no RSS") }
        XCTAssertLessThan(end, 2 * start, "RSS \(start / 1024) KiB -> \(end / 1024) KiB after 100k connections")
    }
}
