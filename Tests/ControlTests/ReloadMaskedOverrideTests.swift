// A reload whose file changes a key that a runtime override still decides says so, per key, in
// its reply and in the log, naming the command that gives the file its way; reloads are
// counted by outcome.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
@testable import Runtime
import XCTest

final class ReloadMaskedOverrideTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    private func masked(_ reply: ControlValue) -> [String] {
        (reply["maskedByRuntime"]?.array ?? []).compactMap(\.string)
    }

    func testWeightsEditedInTheFileUnderARuntimeOverrideAreNamed() throws {
        expectOK(try fixture.command("set weights shop stable=50 canary=50"))
        try fixture.writeConfig(fixture.configText(stableWeight: 70, canaryWeight: 30))
        let reply = expectOK(try fixture.command("reload"))
        let line = "routes.shop.split weights: file 70/30, runtime 50/50 kept; reset shop to take the file's"
        XCTAssertEqual(masked(reply), [line])
        XCTAssertTrue(fixture.logged.all.contains("reload: " + line), "\(fixture.logged.all)")

        // The command it names does what it says.
        expectOK(try fixture.command("reset shop"))
        let routes = try fixture.command("show routes").json
        XCTAssertTrue(routes.contains("\"weight\":70") && routes.contains("\"weight\":30"), routes)
    }

    func testAFileChangeNoOverrideTouchesIsNotReported() throws {
        expectOK(try fixture.command("flip checkout"))
        try fixture.writeConfig(fixture.configText(stableWeight: 70, canaryWeight: 30))
        let reply = expectOK(try fixture.command("reload"))
        XCTAssertEqual(masked(reply), [], "the weights have no override; the live color did not change in the file")
        XCTAssertFalse(fixture.logged.all.contains { $0.contains("kept; reset") }, "\(fixture.logged.all)")
    }

    func testAnOverrideTheFileNowAgreesWithIsNotReported() throws {
        expectOK(try fixture.command("set weights shop stable=50 canary=50"))
        try fixture.writeConfig(fixture.configText(stableWeight: 50, canaryWeight: 50))
        XCTAssertEqual(masked(expectOK(try fixture.command("reload"))), [])
    }

    func testReloadsAreCountedByOutcome() throws {
        let counters = fixture.state.reloads
        expectOK(try fixture.command("reload"))
        try fixture.writeConfig("{ not json")
        expectError(try fixture.command("reload"), "reload refused")
        XCTAssertEqual(counters.appliedCount, 1)
        XCTAssertEqual(counters.refusedCount, 1)
    }
}
