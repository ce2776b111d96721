// What may stand at the control socket's path: nothing, or a stale socket (replaced). A live
// socket, a regular file or a symlink (to anything, a live socket included) is refused and left
// as it is; the socket is created with exactly its mode whatever the umask.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlSocketSymlinkTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try TemporaryDirectory.make(prefix: "sy-link")
    }

    override func tearDown() { TemporaryDirectory.remove(dir) }

    private func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    func testASymlinkIsRefusedWhereverItPoints() throws {
        let live = dir + "/live.sock"
        let server = try ControlServer(path: live, mode: 0o600)
        defer { server.stop() }
        let stale = dir + "/stale.sock"
        try UnixSockets.makeStale(path: stale)
        let file = dir + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for target in [live, stale, file, dir + "/missing"] {
            let link = dir + "/control.sock"
            unlink(link)
            XCTAssertEqual(symlink(target, link), 0)
            XCTAssertThrowsError(try ControlServer(path: link, mode: 0o600), "a symlink to \(target)") { error in
                XCTAssertTrue("\(error)".contains("exists and is not a socket"), "\(error)")
            }
            XCTAssertTrue(isSymlink(link), "the symlink is left alone")
        }
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "x", "never written through")
    }

    func testTheModeComesFromTheUmaskAtBindWhateverTheProcessUmask() throws {
        for processMask: mode_t in [0, 0o022, 0o077] {
            for mode in [0o600, 0o660, 0o640] {
                let previous = umask(processMask)
                defer { umask(previous) }
                let path = dir + "/m\(mode).sock"
                let server = try ControlServer(path: path, mode: mode)
                var st = stat()
                XCTAssertEqual(lstat(path, &st), 0)
                XCTAssertEqual(Int(st.st_mode & 0o7777), mode, "umask \(String(processMask, radix: 8))")
                XCTAssertEqual(umask(processMask), processMask, "the process umask is restored")
                server.stop()
            }
        }
    }
}
