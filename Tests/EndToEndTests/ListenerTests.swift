// Listening sockets: every worker accepts on its own socket of a SO_REUSEPORT group, so new
// connections spread over the workers; and the group never silently joins another process's.
import Foundation
import TestSupport
import XCTest

final class ListenerTests: EndToEndTestCase {
    /// A proxy with `workers` workers in front of an echo upstream, with an admin listener;
    /// returns the proxy and the admin port.
    private func startWithAdmin(workers: Int) throws -> (RunningProxy, UInt16) {
        let echo = try startEcho(name: "a")
        var config = ProxyConfig(endpoints: [echo.endpoint])
        config.workers = workers
        var json = config.json
        json = String(json.dropLast(json.hasSuffix("\n") ? 2 : 1)) + #", "admin": { "address": "127.0.0.1:0" } }"#
        let proxy = try startProxy(json: json)
        guard let line = proxy.process.waitForStderrLine(containing: "admin (/metrics"),
              let adminPort = Self.port(after: "on ", in: line) else {
            throw TestError("no admin line: \(proxy.process.stderr)")
        }
        return (proxy, adminPort)
    }

    /// `switchyard_worker_connections_accepted_total` by worker, from /metrics.
    private func acceptedByWorker(adminPort: UInt16) throws -> [Int] {
        let text = try RawClient(port: adminPort, timeout: 5).exchange("GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n").bodyText
        return text.split(separator: "\n")
            .filter { $0.hasPrefix("switchyard_worker_connections_accepted_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
    }

    func testNewConnectionsSpreadOverTheWorkers() throws {
        let (proxy, adminPort) = try startWithAdmin(workers: 2)
        // Connected together, as a client pool does: a socket shared by both loops lets the
        // loop woken first accept the whole burst.
        let clients = try (0..<40).map { _ in try connect(proxy) }
        for (i, client) in clients.enumerated() {
            XCTAssertEqual(try client.exchange(get("/c/\(i)")).status, 200)
        }
        let accepted = try acceptedByWorker(adminPort: adminPort)
        XCTAssertEqual(accepted.count, 2, "one counter per worker")
        XCTAssertEqual(accepted.reduce(0, +), 40)
        // Hashed over two sockets: fewer than 5 of 40 on one worker has odds near 1 in 10^7.
        XCTAssertGreaterThanOrEqual(accepted.min() ?? 0, 5, "accepted by worker: \(accepted)")
    }

    func testASecondProxyOnTheSameAddressIsRefused() throws {
        let first = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:9"]))
        let json = ProxyConfig(endpoints: ["127.0.0.1:9"]).json
            .replacingOccurrences(of: "127.0.0.1:0", with: "127.0.0.1:\(first.port)")
        let path = try writeFile("second.json", json)
        let second = try ChildProcess.run(switchyard: ["run", "--config", path], timeout: 5)
        XCTAssertEqual(second.termination, .exited(1), "the second proxy must not share the first one's port")
        XCTAssertTrue(second.stderr.lowercased().contains("in use"), second.stderr)
        XCTAssertEqual(try connect(first).exchange(get("/")).status, 502, "the first proxy still answers (no upstream)")
    }
}
