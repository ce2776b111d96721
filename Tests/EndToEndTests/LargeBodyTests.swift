// 100 MiB bodies stream through in both directions without the proxy buffering them: its
// resident memory (VmRSS) grows by less than 16 MiB while they pass.
import Foundation
import Glibc
import XCTest

final class LargeBodyTests: EndToEndTestCase {
    private let size = 100 * 1024 * 1024
    private let rssBound = 16 * 1024 * 1024

    func testHundredMiBRequestBodyStreamsThrough() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy, timeout: 30)
        XCTAssertEqual(try client.exchange(get("/warm-up")).status, 200)
        let baseline = try XCTUnwrap(proxy.process.residentBytes())
        let sampler = RSSSampler(proxy.process)

        try client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n")
        let block = [UInt8](repeating: UInt8(ascii: "b"), count: 256 * 1024)
        var sent = 0
        while sent < size {
            try client.send(block)
            sent += block.count
        }
        let r = try client.readResponse()
        let peak = sampler.stop()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().bodyBytes, size)
        XCTAssertLessThan(peak - baseline, rssBound, "RSS grew from \(baseline) to \(peak) bytes")
    }

    func testHundredMiBRequestBodyWithSmallThreadStacks() throws {
        // Reading the body and handing it upstream must not nest once per block: with a
        // 256 KiB stack that overflowed within the first megabytes.
        let echo = try startEcho()
        let proxy = try startProxy(ProxyConfig(endpoints: [echo.endpoint]), stackKB: 256)
        let client = try connect(proxy, timeout: 30)
        try client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n")
        let block = [UInt8](repeating: UInt8(ascii: "s"), count: 1024 * 1024)
        for _ in 0..<(size / block.count) { try client.send(block) }
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().bodyBytes, size)
        XCTAssertNil(proxy.process.poll(), "the proxy is still running")
    }

    func testHundredMiBResponseBodyStreamsThrough() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy, timeout: 30)
        XCTAssertEqual(try client.exchange(get("/warm-up")).status, 200)
        let baseline = try XCTUnwrap(proxy.process.residentBytes())
        let sampler = RSSSampler(proxy.process)

        try client.send(get("/?bytes=\(size)"))
        // A client that does not read for a while: the proxy must stop reading the upstream
        // rather than buffer for it.
        var r = try client.readHead()
        // The pause is the non-reading client the test simulates; the RSS sampler watches
        // through it. Longer on a loaded machine only means longer backpressure.
        usleep(300_000)
        try client.readBody(&r, method: "GET", keepBody: false)
        let peak = sampler.stop()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyCount, size)
        XCTAssertLessThan(peak - baseline, rssBound, "RSS grew from \(baseline) to \(peak) bytes")
        XCTAssertEqual(try client.exchange(get("/after")).status, 200)
    }
}

/// Samples a process's VmRSS every few milliseconds on a background thread, keeping the peak.
final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(_ process: ChildProcess) {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                if let rss = process.residentBytes() { lock.withLock { peak = max(peak, rss) } }
                usleep(5_000)   // the sampling period
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops sampling (after one last sample) and returns the peak.
    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { peak }
    }
}
