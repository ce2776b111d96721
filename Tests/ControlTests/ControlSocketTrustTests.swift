// Attacks on the control socket through its permissions: a mode that lets every user connect,
// a directory where another user could replace the socket. Each is refused, or warned about.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlSocketTrustTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try TemporaryDirectory.make(prefix: "sy-socktrust")
    }

    override func tearDown() {
        chmod(dir, 0o700)
        TemporaryDirectory.remove(dir)
    }

    private func config(_ control: String) -> String {
        Doc.make(extra: "\"control\": { \"socket\": \"\(dir)/c.sock\", \(control) }")
    }

    private func mode(_ path: String) -> Int {
        var st = stat()
        return lstat(path, &st) == 0 ? Int(st.st_mode) & 0o777 : -1
    }

    func testAModeEveryUserCanWriteIsAConfigErrorUnlessForced() throws {
        for text in ["0777", "0666", "0602", "777"] {
            assertError(config("\"mode\": \"\(text)\""), "control.mode: \"\(text)\" lets every local user change the proxy")
        }
        let forced = parse(config("\"mode\": \"0666\", \"forceMode\": true"))
        XCTAssertEqual(forced?.config.control?.mode, 0o666)
        XCTAssertTrue(forced?.warnings.contains { $0.contains("lets every local user") && $0.contains("forceMode") } == true,
                      "\(forced?.warnings ?? [])")
        let group = parse(config("\"mode\": \"0660\""))
        XCTAssertTrue(group?.warnings.contains { $0.contains("control.mode: \"0660\" lets members of the socket's group") } == true,
                      "\(group?.warnings ?? [])")
        for quiet in ["0600", "0640", "0604"] {
            XCTAssertEqual(parse(config("\"mode\": \"\(quiet)\""))?.warnings.filter { $0.contains("control") }, [], quiet)
        }
    }

    func testTheServerRefusesAModeEveryUserCanWriteUnlessForced() throws {
        let path = dir + "/a.sock"
        XCTAssertThrowsError(try ControlServer(path: path, mode: 0o666)) { error in
            XCTAssertTrue("\(error)".contains("mode 0666 lets every local user change the proxy"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        let forced = try ControlServer(path: path, mode: 0o666, forceMode: true)
        XCTAssertEqual(mode(path), 0o666)
        forced.stop()
    }

    func testADirectoryEveryUserCanWriteIsRefusedWithoutTheStickyBit() throws {
        XCTAssertEqual(chmod(dir, 0o777), 0)
        XCTAssertThrowsError(try ControlServer(path: dir + "/b.sock", mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("the directory \(dir) of the control socket is writable by every user (mode 0777) without the sticky bit"),
                          "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "nothing was created")
        // Like /tmp: others may create files but not replace ours.
        XCTAssertEqual(chmod(dir, 0o1777), 0)
        let sticky = try ControlServer(path: dir + "/b.sock", mode: 0o600)
        XCTAssertEqual(mode(dir + "/b.sock"), 0o600)
        sticky.stop()
    }

    func testAGroupWritableDirectoryIsWarnedAbout() throws {
        XCTAssertEqual(chmod(dir, 0o770), 0)
        let server = try ControlServer(path: dir + "/g.sock", mode: 0o600)
        defer { server.stop() }
        XCTAssertEqual(server.warnings.count, 1)
        XCTAssertTrue(server.warnings.first?.contains("is writable by its group (mode 0770)") == true, "\(server.warnings)")
        XCTAssertEqual(chmod(dir, 0o700), 0)
        let quiet = try ControlServer(path: dir + "/q.sock", mode: 0o600)
        XCTAssertEqual(quiet.warnings, [])
        quiet.stop()
    }

    func testADirectoryOfAnotherUserIsRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to give a directory to another user")
        let theirs = dir + "/theirs"
        XCTAssertEqual(mkdir(theirs, 0o755), 0)
        XCTAssertEqual(chown(theirs, 65_534, 65_534), 0)
        XCTAssertThrowsError(try ControlServer(path: theirs + "/c.sock", mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("the directory \(theirs) of the control socket belongs to uid 65534"), "\(error)")
        }
    }

    func testTheSocketIsNeverReachableWithLooserPermissions() throws {
        // The staging name is bound with a umask that grants nothing beyond `mode`, then renamed.
        let path = dir + "/m.sock"
        let previous = umask(0)
        defer { umask(previous) }
        let server = try ControlServer(path: path, mode: 0o600)
        XCTAssertEqual(mode(path), 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["m.sock"], "no staging name left")
        server.stop()
    }
}
