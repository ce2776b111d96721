// Type=notify: the proxy tells $NOTIFY_SOCKET READY=1 once it listens, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around every reload (refused ones too: the old config serves),
// and STOPPING=1 when a drain begins. One datagram each, received here by a test socket.
import Foundation
import Glibc
import TestSupport
import XCTest

final class SystemdNotifyTests: EndToEndTestCase {
    /// The next datagram's fields (KEY=VALUE lines), or nil after 10 s.
    private func next(_ fd: Int32) -> [String: String]? {
        guard let datagram = UnixSockets.receiveDatagram(fd) else { return nil }
        var fields: [String: String] = [:]
        for line in datagram.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            fields[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return fields
    }

    private func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    private func expectReload(_ fd: Int32, around action: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) rethrows {
        let before = monotonicMicroseconds()
        try action()
        let reloading = next(fd)
        XCTAssertEqual(reloading?["RELOADING"], "1", "\(reloading ?? [:])", file: file, line: line)
        let stamp = reloading?["MONOTONIC_USEC"].flatMap { UInt64($0) } ?? 0
        XCTAssertTrue(stamp >= before && stamp <= monotonicMicroseconds(), "MONOTONIC_USEC \(stamp) is the monotonic clock now",
                      file: file, line: line)
        XCTAssertEqual(next(fd)?["READY"], "1", "READY=1 after the reload", file: file, line: line)
    }

    func testReadyReloadingAndStopping() throws {
        let echo = try startEcho(name: "app")
        let dir = try temporaryDirectory()
        let notify = dir + "/notify.sock"
        let fd = try UnixSockets.datagramReceiver(path: notify, timeout: 10)
        defer { close(fd) }
        let config = try writeFile("proxy.json", routingConfig(upstreams: [("app", pool(echo.endpoint))],
                                                               routes: [#"{ "name": "r", "upstream": "app" }"#],
                                                               controlSocket: dir + "/control.sock"))
        let proxy = try startProxy(configPath: config, environment: ["NOTIFY_SOCKET=\(notify)"])

        let ready = next(fd)
        XCTAssertEqual(ready?["READY"], "1", "\(ready ?? [:])")
        XCTAssertEqual(try connect(proxy).exchange(get("/")).status, 200, "READY came once the proxy listens")

        // `ctl reload` (what ExecReload runs), SIGHUP, and a refused reload.
        try expectReload(fd) {
            let r = try ChildProcess.run(switchyard: ["ctl", "--socket", dir + "/control.sock", "reload"])
            XCTAssertEqual(r.termination, .exited(0), r.stderr)
        }
        try expectReload(fd) { proxy.process.send(signal: SIGHUP) }
        try Data("{ broken".utf8).write(to: URL(fileURLWithPath: config))
        try expectReload(fd) {
            let r = try ChildProcess.run(switchyard: ["ctl", "--socket", dir + "/control.sock", "reload"])
            XCTAssertEqual(r.termination, .exited(1), "ExecReload fails when the config is refused")
            XCTAssertTrue(r.stdout.contains("reload refused"), r.stdout)
        }
        XCTAssertEqual(try connect(proxy).exchange(get("/")).status, 200, "the old config serves")

        proxy.process.send(signal: SIGTERM)
        XCTAssertEqual(next(fd)?["STOPPING"], "1")
        XCTAssertEqual(proxy.process.waitForExit(), .exited(0))
    }
}
