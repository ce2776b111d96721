// The socket file: created with its mode, a stale one replaced, a live one or a non-socket an
// error, removed at stop; clients get a clear reason when nobody is there.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlSocketTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try TemporaryDirectory.make(prefix: "sy-sock")
    }

    override func tearDown() { TemporaryDirectory.remove(dir) }

    private func mode(_ path: String) -> Int {
        var st = stat()
        guard lstat(path, &st) == 0 else { return -1 }
        return Int(st.st_mode & 0o777)
    }

    private func engine() throws -> ControlEngine {
        let text = #"{ "listeners": [{"address": "127.0.0.1:0"}], "upstreams": {"a": {"endpoints": ["127.0.0.1:9"]}}, "routes": [{"name": "r", "upstream": "a"}] }"#
        let loaded = try ConfigLoader.parse(data: Data(text.utf8), file: "t.json")
        return ControlEngine(try RuntimeState(loaded: loaded, source: .file("t.json"), log: { _ in }))
    }

    func testDefaultModeIs0600AndAConfiguredModeIsApplied() throws {
        let path = dir + "/a.sock"
        let server = try ControlServer(path: path, mode: 0o600)
        XCTAssertEqual(mode(path), 0o600)
        server.stop()
        let shared = try ControlServer(path: path, mode: 0o660)
        XCTAssertEqual(mode(path), 0o660)
        shared.stop()
        let fixture = try ControlFixture { $0.mode = "0640" }
        defer { fixture.stop() }
        XCTAssertEqual(mode(fixture.socketPath), 0o640)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.hasPrefix(".") },
                       "no temporary socket left behind")
    }

    func testStaleSocketIsReplacedAndALiveOneRefused() throws {
        let path = dir + "/b.sock"
        // A socket file whose process is gone: bound, then closed without unlinking.
        try UnixSockets.makeStale(path: path)
        XCTAssertThrowsError(try ControlClient(path: path)) { error in
            XCTAssertTrue("\(error)".contains("refuses connections"), "\(error)")
        }
        let server = try ControlServer(path: path, mode: 0o600)
        server.start(try engine())
        XCTAssertEqual(try ControlClient(path: path, timeout: 5).command("help flip")["ok"]?.bool, true)

        XCTAssertThrowsError(try ControlServer(path: path, mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("another Switchyard is serving the control socket"), "\(error)")
        }
        XCTAssertEqual(try ControlClient(path: path, timeout: 5).command("help flip")["ok"]?.bool, true, "still served")
        server.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "removed at stop")
        XCTAssertThrowsError(try ControlClient(path: path)) { error in
            XCTAssertTrue("\(error)".contains("no control socket at \(path)"), "\(error)")
        }
    }

    func testAFileThatIsNotASocketIsAnError() throws {
        let path = dir + "/c.sock"
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ControlServer(path: path, mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("exists and is not a socket"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "left alone")
    }

    func testMissingDirectoryIsAClearError() {
        XCTAssertThrowsError(try ControlServer(path: dir + "/none/d.sock", mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("cannot create the control socket \(dir)/none/d.sock: No such file or directory"),
                          "\(error)")
        }
    }

    func testStopLeavesASocketAnotherProcessPutThere() throws {
        let path = dir + "/e.sock"
        let server = try ControlServer(path: path, mode: 0o600)
        unlink(path)
        let other = try ControlServer(path: path, mode: 0o600)
        server.stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        other.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testManyClientsConnectAndLeave() throws {
        let path = dir + "/f.sock"
        let server = try ControlServer(path: path, mode: 0o600)
        server.start(try engine())
        defer { server.stop() }
        for _ in 0..<200 {
            let c = try ControlClient(path: path, timeout: 5)
            XCTAssertEqual(try c.command("help quit")["ok"]?.bool, true)
        }
        XCTAssertTrue(waitUntil { server.clientCount == 0 }, "closed connections are forgotten")
    }
}
