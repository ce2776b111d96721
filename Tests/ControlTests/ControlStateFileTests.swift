// Persistence: runtime overrides survive a restart through the state file; a corrupt file is
// moved aside and never stops a start; overrides whose names vanished are reported and dropped.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class ControlStateFileTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    private func stateJSON() throws -> ControlValue {
        ControlValue(json: try String(contentsOfFile: fixture.statePath, encoding: .utf8)) ?? .null
    }

    func testOverridesSurviveARestart() throws {
        let c = try fixture.client()
        expectOK(try c.command("flip checkout"))
        expectOK(try c.command("set weights shop stable=70 canary=30"))
        expectOK(try c.command("set mirror shop shadow 12.5"))
        expectOK(try c.command("endpoint add checkout/green \(fixture.canary.endpoint)"))
        expectOK(try c.command("endpoint drain checkout/green \(fixture.canary.endpoint)"))
        let before = expectOK(try c.command("show state"))["overrides"]

        let saved = try stateJSON()
        XCTAssertEqual(saved["version"]?.int, 1)
        XCTAssertEqual(saved["overrides"]?["live"]?["checkout"]?.string, "green")
        XCTAssertEqual(saved["overrides"]?["weights"]?["shop"]?["canary"]?.int, 30)
        XCTAssertEqual(saved["overrides"]?["mirrors"]?["shop"]?["shadow"]?.double, 12.5)
        XCTAssertEqual(saved["overrides"]?["endpoints"]?["checkout/green"]?["draining"]?.array?.count, 1)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.dir).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [], "the temporary file was renamed into place")

        try fixture.restart()
        let after = expectOK(try fixture.command("show state"))["overrides"]
        XCTAssertEqual(after, before)
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "green", "the live color survived")
        let variants = expectOK(try fixture.command("show routes"))["variants"]?.array ?? []
        XCTAssertEqual(variants.map { $0["weight"]?.int }, [70, 30])
        XCTAssertEqual(variants.map { $0["override"]?.bool }, [true, true])
    }

    func testUndoingAChangeLeavesNoOverride() throws {
        let c = try fixture.client()
        expectOK(try c.command("flip checkout"))
        expectOK(try c.command("flip checkout"))
        expectOK(try c.command("endpoint add canary \(fixture.shadow.endpoint)"))
        expectOK(try c.command("endpoint remove canary \(fixture.shadow.endpoint)"))
        XCTAssertEqual(expectOK(try c.command("show state"))["overrides"]?.array?.count, 0)
        XCTAssertEqual(try stateJSON()["overrides"], ["endpoints": [:], "live": [:], "mirrors": [:], "weights": [:]])
    }

    func testCorruptStateFileIsMovedAsideAndTheConfigIsUsed() throws {
        expectOK(try fixture.command("flip checkout"))
        fixture.stopProxy()
        try Data("{\"version\":1,\"overrides\":{\"live\":".utf8).write(to: URL(fileURLWithPath: fixture.statePath))
        try fixture.start()
        XCTAssertEqual(try fixture.http().get().name, "blue", "the config's live color")
        let line = fixture.logged.all.first { $0.contains("is corrupt") }
        XCTAssertNotNil(line, "a clear log line: \(fixture.logged.all)")
        XCTAssertTrue(line?.contains("moved to \(fixture.statePath).corrupt-") == true, line ?? "")
        let aside = try FileManager.default.contentsOfDirectory(atPath: fixture.dir).filter { $0.hasPrefix("state.json.corrupt-") }
        XCTAssertEqual(aside.count, 1, "nothing is lost")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.statePath))
        // Changes work again and write a fresh file.
        expectOK(try fixture.command("flip checkout"))
        XCTAssertEqual(try stateJSON()["overrides"]?["live"]?["checkout"]?.string, "green")
    }

    func testUnknownFormatVersionIsTreatedAsCorrupt() throws {
        fixture.stopProxy()
        try Data(#"{"version": 99, "overrides": {}}"#.utf8).write(to: URL(fileURLWithPath: fixture.statePath))
        try fixture.start()
        XCTAssertTrue(fixture.logged.all.contains { $0.contains("unsupported format version 99") })
    }

    func testOverridesWhoseNamesVanishedAreReportedAndDropped() throws {
        fixture.stopProxy()
        try Data("""
        {"version": 1, "overrides": {
          "live": {"checkout": "green", "gone": "blue", "canary": "green"},
          "weights": {"shop": {"canary": 5, "ghost": 1}, "oldroute": {"a": 1}},
          "mirrors": {"shop": {"nowhere": 5}},
          "endpoints": {"gone/blue": {"added": ["127.0.0.1:9"]}, "canary": {"removed": ["127.0.0.1:1"]}}
        }}
        """.utf8).write(to: URL(fileURLWithPath: fixture.statePath))
        try fixture.start()
        let dropped = fixture.logged.all.filter { $0.hasPrefix("state file: dropped override") }
        for fragment in ["live gone", "live canary", "no variant \"ghost\"", "weights oldroute", "mirror shop nowhere",
                         "endpoints gone/blue", "remove 127.0.0.1:1"] {
            XCTAssertTrue(dropped.contains { $0.contains(fragment) }, "\(fragment) not in \(dropped)")
        }
        let settings = (expectOK(try fixture.command("show state"))["overrides"]?.array ?? []).map {
            "\($0["name"]?.string ?? "") \($0["setting"]?.string ?? "")"
        }
        XCTAssertEqual(Set(settings), ["checkout live", "shop weight canary"])
        XCTAssertNil(try stateJSON()["overrides"]?["live"]?["gone"], "the file was rewritten without them")
    }

    func testOverridesThatNoLongerBuildAreDroppedOneByOne() {
        // Weights that made every variant 0 cannot build; the other overrides still apply.
        var config = fixture.state.queue.sync { fixture.state.fileConfig }
        config.control = nil
        var overrides = Overrides()
        overrides.weights["shop"] = ["stable": 0]
        overrides.live["checkout"] = "green"
        let settled = try? RuntimeState.settle(overrides, on: config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(settled?.kept.live, ["checkout": "green"])
        XCTAssertEqual(settled?.kept.weights, [:])
        XCTAssertEqual(settled?.dropped.count, 1)
    }

    func testStateFileWithoutADirectoryIsReportedNotFatal() throws {
        fixture.stopProxy()
        try fixture.writeConfig(fixture.configText().replacingOccurrences(of: fixture.statePath, with: fixture.dir + "/missing/state.json"))
        try fixture.start()
        let reply = expectOK(try fixture.command("flip checkout"))
        XCTAssertTrue(reply["stateFileError"]?.string?.contains("No such file or directory") == true, reply.json)
        XCTAssertEqual(try fixture.http().get().name, "green", "the change is live regardless")
    }
}
