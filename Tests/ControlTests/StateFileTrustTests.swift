// Attacks on the state file through its directory: a symlink or file planted at the temporary
// name, a directory or file other users can write. None may reach a file outside the state.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class StateFileTrustTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() {
        if let dir = fixture?.dir { chmod(dir, 0o700) }
        fixture?.stop()
    }

    private func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    private func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    private func mode(_ path: String) -> Int {
        var st = stat()
        return lstat(path, &st) == 0 ? Int(st.st_mode) & 0o7777 : -1
    }

    func testASymlinkAtThePredictableTemporaryNameIsNotFollowed() throws {
        // Before: the save opened "state.json.tmp-<pid>" with O_TRUNC and wrote through the link.
        let victim = fixture.dir + "/victim"
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: victim))
        let planted = "\(fixture.statePath).tmp-\(getpid())"
        XCTAssertEqual(symlink(victim, planted), 0)
        expectOK(try fixture.command("flip checkout"))
        XCTAssertEqual(contents(victim), "precious\n", "the file behind the symlink was not touched")
        XCTAssertTrue(isSymlink(planted), "the planted link was left as it was")
        XCTAssertTrue(contents(fixture.statePath)?.contains("\"checkout\" : \"green\"") == true)
        XCTAssertFalse(isSymlink(fixture.statePath))
        XCTAssertEqual(mode(fixture.statePath), 0o600)
    }

    func testAPlantedTemporaryNameIsNeverOpened() throws {
        let victim = fixture.dir + "/victim"
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: victim))
        let planted = fixture.dir + "/guessed.tmp"
        XCTAssertEqual(symlink(victim, planted), 0)
        let plain = fixture.dir + "/plain.tmp"
        try Data("someone else's\n".utf8).write(to: URL(fileURLWithPath: plain))
        var overrides = Overrides()
        overrides.live["checkout"] = "green"

        // Every name taken: the save fails and opens nothing.
        let always = StateFile(path: fixture.dir + "/s1.json", temporaryName: { _ in planted })
        XCTAssertThrowsError(try always.save(overrides)) { error in
            XCTAssertTrue("\(error)".contains("File exists"), "\(error)")
        }
        let existing = StateFile(path: fixture.dir + "/s2.json", temporaryName: { _ in plain })
        XCTAssertThrowsError(try existing.save(overrides))
        XCTAssertEqual(contents(victim), "precious\n")
        XCTAssertEqual(contents(plain), "someone else's\n")

        // A taken name is skipped for a fresh one.
        let names = Names([planted, plain, fixture.dir + "/fresh.tmp"])
        let retrying = StateFile(path: fixture.dir + "/s3.json", temporaryName: { _ in names.next() })
        try retrying.save(overrides)
        XCTAssertEqual(retrying.load(), .loaded(overrides))
        XCTAssertEqual(contents(victim), "precious\n")
        XCTAssertEqual(mode(fixture.dir + "/s3.json"), 0o600)
    }

    func testTemporaryNamesAreUnpredictable() {
        let file = StateFile(path: "/x/state.json")
        let names = Set((0..<100).map { _ in file.temporaryName(file.path) })
        XCTAssertEqual(names.count, 100)
        for name in names {
            XCTAssertTrue(name.hasPrefix("/x/state.json.tmp-"), name)
            XCTAssertEqual(name.count, "/x/state.json.tmp-".count + 32, name)
            XCTAssertFalse(name.hasSuffix("-\(getpid())"), name)
        }
    }

    func testAStateDirectoryWritableByOthersIsRefused() throws {
        fixture.stopProxy()
        for mode in [0o777, 0o1777] as [mode_t] {
            XCTAssertEqual(chmod(fixture.dir, mode), 0)
            XCTAssertThrowsError(try fixture.start(), "mode \(String(mode, radix: 8))") { error in
                // The config file lives there too: without the sticky bit its own check refuses
                // the directory first; with it (enough for the config) the state file's does.
                let which = mode & 0o1000 != 0 ? "control.stateFile: the directory \(fixture.dir) of the state file"
                                               : "the directory \(fixture.dir) of the config file"
                XCTAssertTrue("\(error)".contains(which + " is writable by every user"), "\(error)")
            }
            XCTAssertThrowsError(try StateFile(path: fixture.statePath).save(Overrides())) { error in
                XCTAssertTrue("\(error)".contains("not saved"), "\(error)")
            }
        }
        XCTAssertEqual(chmod(fixture.dir, 0o700), 0)
        try fixture.start()
        expectOK(try fixture.command("flip checkout"))
    }

    func testAStateFileOrDirectoryOfAnotherUserIsRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to give a file to another user")
        expectOK(try fixture.command("flip checkout"))
        fixture.stopProxy()
        let nobody: uid_t = 65_534
        XCTAssertEqual(chown(fixture.statePath, nobody, nobody), 0)
        XCTAssertThrowsError(try fixture.start()) { error in
            XCTAssertTrue("\(error)".contains("the state file \(fixture.statePath) belongs to uid 65534"), "\(error)")
        }
        XCTAssertEqual(chown(fixture.statePath, 0, 0), 0)
        XCTAssertEqual(chmod(fixture.statePath, 0o666), 0)
        XCTAssertThrowsError(try fixture.start()) { error in
            XCTAssertTrue("\(error)".contains("is writable by other users (mode 0666)"), "\(error)")
        }
        XCTAssertEqual(chmod(fixture.statePath, 0o600), 0)
        let sub = fixture.dir + "/theirs"
        XCTAssertEqual(mkdir(sub, 0o755), 0)
        XCTAssertEqual(chown(sub, nobody, nobody), 0)
        let theirs = StateFile(path: sub + "/state.json")
        XCTAssertTrue(theirs.trustProblem()?.contains("belongs to uid 65534") == true, theirs.trustProblem() ?? "nil")
        XCTAssertThrowsError(try theirs.save(Overrides()))
    }
}

/// Hands out names in order, then the last one again.
final class Names: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String]
    init(_ names: [String]) { self.names = names }
    func next() -> String { lock.withLock { names.count > 1 ? names.removeFirst() : names[0] } }
}

/// The load checks what it opened, not the path: a state file that is a symbolic link (the
/// path's check looked at the link, the read followed it) is refused, never read.
final class StateFileLoadTrustTests: XCTestCase {
    func testALinkedStateFileIsRefusedAtLoad() throws {
        let dir = try TemporaryDirectory.make()
        defer { TemporaryDirectory.remove(dir) }
        let elsewhere = dir + "/elsewhere.json"
        try Data(#"{ "version": 1, "overrides": { "live": { "checkout": "green" } } }"#.utf8).write(to: URL(fileURLWithPath: elsewhere))
        let linked = dir + "/state.json"
        XCTAssertEqual(symlink(elsewhere, linked), 0)
        XCTAssertNil(StateFile(path: linked).trustProblem(), "the path check alone lets the link through")
        guard case .refused(let reason) = StateFile(path: linked).load() else {
            return XCTFail("a linked state file was read: \(StateFile(path: linked).load())")
        }
        XCTAssertTrue(reason.contains("symbolic link"), reason)
        // The file itself, opened directly, is read as before.
        guard case .loaded(let overrides) = StateFile(path: elsewhere).load() else { return XCTFail("the real file was not read") }
        XCTAssertEqual(overrides.live["checkout"], "green")
    }

    func testAStateFileOthersCanWriteIsRefusedAtLoad() throws {
        let dir = try TemporaryDirectory.make()
        defer { TemporaryDirectory.remove(dir) }
        let path = dir + "/state.json"
        try Data(#"{ "version": 1, "overrides": {} }"#.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o666)
        guard case .refused(let reason) = StateFile(path: path).load() else { return XCTFail("read a world-writable state file") }
        XCTAssertTrue(reason.contains("writable by other users"), reason)
    }
}
