// reload: a valid file is swapped in with the runtime overrides re-applied and listeners
// opened/closed; an invalid one is refused with every error and key path while traffic goes on.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class ControlReloadTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    func testGoodReloadKeepsRuntimeOverrides() throws {
        expectOK(try fixture.command("flip checkout"))
        try fixture.writeConfig(fixture.configText(stableWeight: 50, canaryWeight: 50))
        let reply = expectOK(try fixture.command("reload"))
        XCTAssertEqual(reply.version, 3)
        XCTAssertEqual(reply["droppedOverrides"]?.array?.count, 0)
        let variants = expectOK(try fixture.command("show routes"))["variants"]?.array ?? []
        XCTAssertEqual(variants.map { $0["weight"]?.int }, [50, 50], "the file's new weights")
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "green", "the runtime flip stays")
    }

    func testReloadWithTheOverrideNowInTheFileDropsItQuietly() throws {
        expectOK(try fixture.command("flip checkout"))
        try fixture.writeConfig(fixture.configText(live: "green"))
        expectOK(try fixture.command("reload"))
        XCTAssertEqual(expectOK(try fixture.command("show state"))["overrides"]?.array?.count, 0)
        XCTAssertEqual(try fixture.http().get().name, "green")
    }

    func testReloadOpensAndClosesListeners() throws {
        try fixture.writeConfig(fixture.configText(extraListener: true))
        let opened = expectOK(try fixture.command("reload"))
        XCTAssertEqual(opened["listenersOpened"]?.array, ["127.0.0.2:0"])
        let added = fixture.server.boundAddresses.first { $0.host == "127.0.0.2" }
        XCTAssertNotNil(added)
        let kept = try fixture.http()
        XCTAssertEqual(try kept.get().name, "blue")

        try fixture.writeConfig(fixture.configText())
        let closed = expectOK(try fixture.command("reload"))
        XCTAssertEqual(closed["listenersClosed"]?.array, ["127.0.0.2:0"])
        XCTAssertEqual(fixture.server.boundAddresses.count, 1)
        XCTAssertEqual(try kept.get().name, "blue", "existing client connections continue")
    }

    func testSettingsThatNeedARestartAreNamed() throws {
        fixture.options.workers = 3
        try fixture.writeConfig()
        let reply = expectOK(try fixture.command("reload"))
        XCTAssertEqual(reply["restartNeeded"]?.array, ["workers"])
    }

    func testInvalidReloadIsRefusedWithEveryErrorWhileTrafficContinues() throws {
        expectOK(try fixture.command("flip checkout"))
        let broken = fixture.configText()
            .replacingOccurrences(of: #""upstream": "canary""#, with: #""upstream": "canry""#)
            .replacingOccurrences(of: #""workers": 2"#, with: #""workers": 2, "colour": 1"#)
        try fixture.writeConfig(broken)
        let http = try fixture.http()
        let reply = try fixture.command("reload")
        expectError(reply, "reload refused, the running config is unchanged")
        let errors = reply["errors"]?.array?.compactMap(\.string) ?? []
        XCTAssertEqual(errors.count, 2, "\(errors)")
        XCTAssertTrue(errors.contains { $0.contains("routes[0].split[1].upstream") && $0.contains("canry") }, "\(errors)")
        XCTAssertTrue(errors.contains { $0.contains("colour") }, "\(errors)")
        XCTAssertTrue(errors.allSatisfy { $0.hasPrefix(fixture.configPath) }, "each error names the file: \(errors)")
        XCTAssertEqual(try http.get(headers: ["X-Switchyard-Variant: stable"]).name, "green")
        XCTAssertEqual(fixture.state.queue.sync { fixture.state.version }, 2)

        try fixture.writeConfig(fixture.configText())
        expectOK(try fixture.command("reload"))
    }

    func testReloadDropsOverridesWhoseNamesVanished() throws {
        let beta = #"{ "name": "beta", "match": { "pathPrefix": "/beta" }, "split": [ { "variant": "a", "upstream": "canary", "weight": 1 }, { "variant": "b", "upstream": "shadow", "weight": 1 } ] },"#
        try fixture.writeConfig(fixture.configText(extraRoute: beta))
        expectOK(try fixture.command("reload"))
        expectOK(try fixture.command("set weights beta a=0 b=10"))
        expectOK(try fixture.command("flip checkout"))
        try fixture.writeConfig(fixture.configText())
        let reply = expectOK(try fixture.command("reload"))
        let dropped = reply["droppedOverrides"]?.array?.compactMap(\.string) ?? []
        XCTAssertEqual(dropped.count, 1)
        XCTAssertTrue(dropped.first?.contains("beta") == true, "\(dropped)")
        let saved = ControlValue(json: try String(contentsOfFile: fixture.statePath, encoding: .utf8))
        XCTAssertNil(saved?["overrides"]?["weights"]?["beta"])
        XCTAssertEqual(saved?["overrides"]?["live"]?["checkout"]?.string, "green")
    }

    func testSignalStyleReloadLogsItsOutcome() throws {
        try fixture.writeConfig("{ nope")
        fixture.state.reloadAndLog()
        fixture.state.queue.sync {}
        XCTAssertTrue(fixture.logged.all.contains { $0.hasPrefix("reload refused") }, "\(fixture.logged.all)")
        try fixture.writeConfig()
        fixture.state.reloadAndLog()
        fixture.state.queue.sync {}
        XCTAssertTrue(fixture.logged.all.contains { $0.hasPrefix("reloaded \(fixture.configPath): version") }, "\(fixture.logged.all)")
    }
}
