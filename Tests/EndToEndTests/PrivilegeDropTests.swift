// "user": started as root, the proxy opens its listeners, control socket and files, then runs as
// that user on every thread with no capability left: a write where only root may write fails,
// and it keeps serving. Root without "user" is warned about. (Skipped unless run as root.)
import Foundation
import Glibc
import XCTest

final class PrivilegeDropTests: EndToEndTestCase {
    private func statusFields(_ pid: pid_t, task: String) -> [String: [String]] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
        var out: [String: [String]] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
        }
        return out
    }

    func testRootDropsToNobodyAfterOpeningEverything() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let (blue, green, canary) = (try startEcho(name: "blue"), try startEcho(name: "green"), try startEcho(name: "canary"))
        // The test directory is root's (mode 0700): the state file there is a root-only file.
        var text = try controlConfig(blue: blue, green: green, canary: canary)
        text = text.replacingOccurrences(of: "\"listeners\"", with: "\"user\": \"nobody\",\n  \"listeners\"")
        let proxy = try startProxy(json: text)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "running as nobody (uid 65534"), proxy.process.stderr)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "nobody cannot write"), "the unwritable state directory is named")

        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(proxy.process.pid)/task")
        XCTAssertGreaterThan(tasks.count, 1, "worker threads")
        for task in tasks {
            let fields = statusFields(proxy.process.pid, task: task)
            XCTAssertEqual(fields["Uid"], ["65534", "65534", "65534", "65534"], "thread \(task)")
            XCTAssertEqual(fields["Gid"]?.count, 4)
            XCTAssertFalse(fields["Gid"]?.contains("0") ?? true, "thread \(task): no root group")
            XCTAssertFalse(fields["Groups"]?.contains("0") ?? false, "thread \(task): no supplementary root group")
            XCTAssertEqual(fields["CapEff"], ["0000000000000000"], "thread \(task)")
            XCTAssertEqual(fields["CapPrm"], ["0000000000000000"], "thread \(task)")
        }

        // Still serving on the listener bound as root; the control socket (root can connect)
        // takes a change; saving it to the root-only directory fails as nobody.
        XCTAssertEqual(try servedBy(proxy), "blue")
        let flip = try ctl(["--json", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("stateFileError") && flip.stdout.contains("ermission denied"), flip.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: try temporaryDirectory() + "/state.json"))
        XCTAssertEqual(try servedBy(proxy), "green", "the change is live regardless")

        var st = stat()
        XCTAssertEqual(lstat(try controlSocket(), &st), 0)
        XCTAssertEqual(st.st_uid, 65534, "the socket belongs to the user the proxy runs as")
        XCTAssertEqual(Int(st.st_mode & 0o777), 0o600)
    }

    func testRootWithoutUserIsWarned() throws {
        try XCTSkipUnless(geteuid() == 0, "only root is warned")
        let (proxy, _) = try startProxyWithEcho()
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "running as root: set \"user\""), proxy.process.stderr)
    }

    func testAnUnknownUserIsAStartUpError() throws {
        let (proxy, echo) = try startProxyWithEcho()
        proxy.process.kill()
        let text = ProxyConfig(endpoints: [echo.endpoint]).json
            .replacingOccurrences(of: "\"listeners\"", with: "\"user\": \"no-such-user-here\",\n  \"listeners\"")
        let path = try writeFile("unknown-user.json", text)
        let run = try ChildProcess.run(switchyard: ["run", "--config", path])
        XCTAssertEqual(run.termination, .exited(1))
        XCTAssertTrue(run.stderr.contains("user: no user \"no-such-user-here\" on this system"), run.stderr)
    }
}
