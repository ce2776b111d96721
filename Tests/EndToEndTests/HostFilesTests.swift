// The binary's checks of files on the host: `check` and `run` warn about a secret file others
// can read (one stderr line naming the file and mode), and refuse a control socket mode that
// lets every user in unless forceMode is set.
import Foundation
import Glibc
import XCTest

final class HostFilesTests: EndToEndTestCase {
    private func stickyConfig(endpoint: String, secret: String) -> String {
        var config = ProxyConfig(endpoints: [endpoint])
        config.routes = ["""
            { "name": "default", "split": [{ "variant": "a", "upstream": "app", "weight": 1 }],
              "sticky": { "secretFile": "\(secret)" } }
            """]
        return config.json
    }

    func testCheckAndRunWarnAboutASecretFileOthersCanRead() throws {
        let echo = try startEcho()
        let secret = try writeFile("cookie.key", "s3cret-0123456789ab\n")
        XCTAssertEqual(chmod(secret, 0o644), 0)
        let path = try writeFile("sticky.json", stickyConfig(endpoint: echo.endpoint, secret: secret))

        let checked = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(checked.termination, .exited(0), checked.stderr)
        let warning = checked.stderr.split(separator: "\n").filter { $0.contains(secret) }
        XCTAssertEqual(warning.count, 1, checked.stderr)
        XCTAssertTrue(warning.first?.hasPrefix("warning: ") == true, checked.stderr)
        XCTAssertTrue(warning.first?.contains("has mode 0644") == true, checked.stderr)

        let proxy = try startProxy(json: try String(contentsOfFile: path, encoding: .utf8))
        let line = proxy.process.stderr.split(separator: "\n").first { $0.contains(secret) }
        XCTAssertTrue(line?.contains("has mode 0644") == true, proxy.process.stderr)

        XCTAssertEqual(chmod(secret, 0o600), 0)
        let quiet = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(quiet.termination, .exited(0), quiet.stderr)
        XCTAssertFalse(quiet.stderr.contains(secret), quiet.stderr)
    }

    func testAControlSocketEveryUserCanWriteIsRefusedUnlessForced() throws {
        let dir = try temporaryDirectory()
        let base = ProxyConfig(endpoints: ["127.0.0.1:9"]).json
        func withControl(_ members: String) -> String {
            base.replacingOccurrences(of: #""workers":"#, with: "\"control\": { \"socket\": \"\(dir)/c.sock\", \(members) },\n  \"workers\":")
        }
        let open = try writeFile("open.json", withControl(#""mode": "0666""#))
        let refused = try ChildProcess.run(switchyard: ["check", "--config", open])
        XCTAssertEqual(refused.termination, .exited(1), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("control.mode: \"0666\" lets every local user change the proxy"), refused.stderr)
        let ran = try ChildProcess.run(switchyard: ["run", "--config", open])
        XCTAssertEqual(ran.termination, .exited(1), ran.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/c.sock"))

        let forced = try writeFile("forced.json", withControl(#""mode": "0666", "forceMode": true"#))
        let accepted = try ChildProcess.run(switchyard: ["check", "--config", forced])
        XCTAssertEqual(accepted.termination, .exited(0), accepted.stderr)
        XCTAssertTrue(accepted.stderr.contains("warning: ") && accepted.stderr.contains("forceMode is set"), accepted.stderr)
    }
}
