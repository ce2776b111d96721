// Invariants are checked on the snapshot a commit would publish, not only when each change is
// staged: two transactions that each drain one of a pool's two endpoints used to commit both,
// leaving a live pool with nothing to serve (a 503 outage).
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class ControlCommitInvariantTests: XCTestCase {
    var fixture: ControlFixture!
    var second: TestUpstream!

    override func setUpWithError() throws {
        second = try TestUpstream(name: "canary2")
        let endpoint = second.endpoint
        fixture = try ControlFixture { $0.extraCanaryEndpoints = [endpoint] }
    }

    override func tearDown() {
        fixture?.stop()
        second?.stop()
    }

    func testInterleavedTransactionsCannotDrainAPoolEmpty() throws {
        expectOK(try fixture.command("set weights shop stable=0 canary=100"))
        let a = try fixture.client()
        let b = try fixture.client()
        expectOK(try a.command("begin"))
        expectOK(try b.command("begin"))
        XCTAssertEqual(expectOK(try a.command("endpoint drain canary \(fixture.canary.endpoint)"))["staged"]?.bool, true)
        XCTAssertEqual(expectOK(try b.command("endpoint drain canary \(second.endpoint)"))["staged"]?.bool, true)
        let first = expectOK(try a.command("commit"))
        expectError(try b.command("commit"), "commit: refused, nothing changed: upstreams.canary.endpoints: every endpoint is draining")
        XCTAssertFalse(try b.command("show state")["transaction"] != nil, "the refused transaction is closed")
        XCTAssertEqual(expectOK(try b.command("show state")).version, first.version, "nothing was published")
        for _ in 0..<4 { XCTAssertEqual(try fixture.http().get().name, "canary2", "the pool still serves") }
    }

    func testAChangeStagedAfterAnotherCommitValidatesAgainstIt() throws {
        let a = try fixture.client()
        let b = try fixture.client()
        expectOK(try b.command("begin"))
        expectOK(try a.command("endpoint drain canary \(fixture.canary.endpoint)"))
        // b's staged view follows a's commit: its drain would now leave nothing serving.
        expectError(try b.command("endpoint drain canary \(second.endpoint)"), "last serving endpoint of canary")
        expectOK(try b.command("abort"))
    }

    func testAFlipToAColorWithNothingServingIsRefused() throws {
        let c = try fixture.client()
        expectOK(try c.command("endpoint add checkout/green \(second.endpoint)"))
        expectOK(try c.command("endpoint drain checkout/green \(fixture.green.endpoint)"))
        expectOK(try c.command("endpoint drain checkout/green \(second.endpoint)"))
        expectError(try c.command("flip checkout"), "upstreams.checkout.green.endpoints: every endpoint is draining")
        expectOK(try c.command("begin"))
        expectError(try c.command("flip checkout"), "checkout/green would be live with no serving endpoint")
        expectOK(try c.command("abort"))
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "blue")
    }
}
