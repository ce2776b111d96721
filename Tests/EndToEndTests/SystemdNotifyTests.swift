// Type=notify: the proxy tells $NOTIFY_SOCKET READY=1 once it listens, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around every reload (refused ones too: the old config serves),
// and STOPPING=1 when a drain begins. One datagram each, received here by a test socket.
import Foundation
import Glibc
import XCTest

final class SystemdNotifyTests: EndToEndTestCase {
    private func datagramSocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw HarnessError("bind \(path): errno \(errno)") }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// The next datagram's fields (KEY=VALUE lines), or nil after 10 s.
    private func next(_ fd: Int32) -> [String: String]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        var fields: [String: String] = [:]
        for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
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
        let fd = try datagramSocket(notify)
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
