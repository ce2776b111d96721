// A hostile state file can do exactly what the same command typed on the control socket can,
// nothing more: each value is accepted from the file if and only if the command is. (The file
// is as trusted as the socket; its directory is checked like the socket's, StateFileTrustTests.)
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class HostileStateFileTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    /// Whether the override in `overrides` (the inside of "overrides") survives a start.
    private func appliedFromFile(_ overrides: String) throws -> Bool {
        fixture.stopProxy()
        try Data("{\"version\": 1, \"overrides\": {\(overrides)}}".utf8).write(to: URL(fileURLWithPath: fixture.statePath))
        try fixture.start()
        return !(expectOK(try fixture.command("show state"))["overrides"]?.array?.isEmpty ?? true)
    }

    /// Whether `command` is accepted on a proxy started without a state file.
    private func acceptedOnTheSocket(_ command: String) throws -> Bool {
        fixture.stopProxy()
        unlink(fixture.statePath)
        try fixture.start()
        return try fixture.command(command).ok
    }

    func testEachValueIsAcceptedFromTheFileExactlyWhenTheCommandIs() throws {
        let blue = fixture.blue.endpoint
        let canary = fixture.canary.endpoint
        let cases: [(file: String, command: String, accepted: Bool)] = [
            (#""live": {"checkout": "green"}"#, "set live checkout green", true),
            (#""live": {"checkout": "purple"}"#, "set live checkout purple", false),
            (#""live": {"canary": "green"}"#, "set live canary green", false),
            (#""weights": {"shop": {"canary": 5}}"#, "set weights shop canary=5", true),
            (#""weights": {"shop": {"canary": 2000000}}"#, "set weights shop canary=2000000", false),
            (#""weights": {"shop": {"canary": -1}}"#, "set weights shop canary=-1", false),
            (#""weights": {"shop": {"stable": 0}}"#, "set weights shop stable=0", false),
            (#""weights": {"shop": {"ghost": 1}}"#, "set weights shop ghost=1", false),
            (#""mirrors": {"shop": {"shadow": 150}}"#, "set mirror shop shadow 150", false),
            (#""mirrors": {"shop": {"nowhere": 5}}"#, "set mirror shop nowhere 5", false),
            // The metadata address of a cloud host: the socket accepts it, so the file does too.
            (#""endpoints": {"canary": {"added": ["169.254.169.254:80"]}}"#, "endpoint add canary 169.254.169.254:80", true),
            (#""endpoints": {"canary": {"added": ["not an address"]}}"#, "endpoint add canary 'not an address'", false),
            (#""endpoints": {"canary": {"added": ["127.0.0.1:0"]}}"#, "endpoint add canary 127.0.0.1:0", false),
            (#""endpoints": {"checkout": {"added": ["127.0.0.1:7"]}}"#, "endpoint add checkout 127.0.0.1:7", false),
            (#""endpoints": {"checkout/teal": {"added": ["127.0.0.1:7"]}}"#, "endpoint add checkout/teal 127.0.0.1:7", false),
            // Draining the only endpoint of a live pool: an outage either way.
            ("\"endpoints\": {\"canary\": {\"draining\": [\"\(canary)\"]}}", "endpoint drain canary \(canary)", false),
            ("\"endpoints\": {\"checkout/blue\": {\"draining\": [\"\(blue)\"]}}", "endpoint drain checkout/blue \(blue)", false),
            ("\"endpoints\": {\"checkout/blue\": {\"removed\": [\"\(blue)\"]}}", "endpoint remove checkout/blue \(blue)", false),
        ]
        for c in cases {
            let fromFile = try appliedFromFile(c.file)
            let onSocket = try acceptedOnTheSocket(c.command)
            XCTAssertEqual(onSocket, c.accepted, "the command \(c.command)")
            XCTAssertEqual(fromFile, onSocket, "the file {\(c.file)} against the command \(c.command)")
        }
    }

    func testARefusedValueIsReportedAndTheRestApplied() throws {
        let canary = fixture.canary.endpoint
        XCTAssertTrue(try appliedFromFile("\"live\": {\"checkout\": \"green\"}, \"endpoints\": {\"canary\": {\"draining\": [\"\(canary)\"]}}"))
        let dropped = fixture.logged.all.filter { $0.hasPrefix("state file: dropped override endpoints canary") }
        XCTAssertEqual(dropped.count, 1, "\(fixture.logged.all)")
        XCTAssertTrue(dropped.first?.contains("every endpoint is draining") == true, dropped.first ?? "")
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: canary"]).name, "canary", "the canary still serves")
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "green", "the rest applied")
    }
}
