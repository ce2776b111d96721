// The config file gets the state file's trust rules: a file other users can write (or one in a
// directory they can replace it in) reconfigures the proxy, so `check`, `run` and a reload
// refuse it with the reason, unless the environment explicitly allows it.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ConfigTrustTests: EndToEndTestCase {
    private func minimal() -> String {
        #"{ "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } }, "routes": [ { "name": "r", "upstream": "app" } ] }"#
    }

    func testAWorldWritableConfigIsRefusedByCheckAndRun() throws {
        let path = try writeFile("open.json", minimal())
        chmod(path, 0o666)
        let check = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(check.termination, .exited(1), check.stderr)
        XCTAssertTrue(check.stderr.contains("the config file is writable by every user (mode 0666)"), check.stderr)
        let run = try ChildProcess.run(switchyard: ["run", "--config", path])
        XCTAssertEqual(run.termination, .exited(1), run.stderr)
        XCTAssertTrue(run.stderr.contains("writable by every user"), run.stderr)
        // Explicitly allowed by whoever starts the process.
        let allowed = adopt(try ChildProcess(executable: "/usr/bin/env", arguments: [
            "SWITCHYARD_ALLOW_UNTRUSTED_CONFIG=1", try SwitchyardBinary.require(), "check", "--config", path]))
        XCTAssertEqual(allowed.waitForExit(timeout: 20), .exited(0), allowed.stderr)
    }

    func testAConfigInADirectoryEveryoneCanWriteIsRefused() throws {
        let dir = try temporaryDirectory() + "/open"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o777)
        let path = dir + "/c.json"
        try minimal().write(toFile: path, atomically: true, encoding: .utf8)
        let check = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(check.termination, .exited(1), check.stderr)
        XCTAssertTrue(check.stderr.contains("is writable by every user (mode 0777) without the sticky bit"), check.stderr)
    }

    func testAReloadOfAConfigMadeWritableIsRefusedAndTheOldOneKept() throws {
        let echo = try startEcho(name: "a")
        let proxy = try startProxy(ProxyConfig(endpoints: [echo.endpoint]))
        chmod(proxy.configPath, 0o666)
        proxy.process.send(signal: SIGHUP)
        let line = proxy.process.waitForStderrLine(containing: "reload refused")
        XCTAssertTrue(line?.contains("writable by every user") == true, line ?? proxy.process.stderr)
        XCTAssertEqual(try connect(proxy).exchange(get("/")).status, 200, "the running config is kept")
    }
}
