// Large runtime changes: a 1,000-change transaction and a state file of 8,000 endpoints. Each
// staged line used to replay the whole transaction and build a snapshot, and every endpoint
// lookup scanned the pool re-formatting addresses: 290 s and 43 s. The bounds below are loose
// for debug builds on a busy machine, and still far below what the quadratic code took.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class ControlScaleTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    /// `count` distinct loopback addresses nobody listens on (the canary takes no traffic).
    private func addresses(_ count: Int) -> [String] {
        (0..<count).map { "127.1.\($0 / 250).\($0 % 250 + 1):9" }
    }

    private func canaryEndpoints() throws -> [ControlValue] {
        (expectOK(try fixture.command("show upstreams"))["endpoints"]?.array ?? []).filter { $0["upstream"]?.string == "canary" }
    }

    func testAThousandChangeTransactionCommitsQuickly() throws {
        let c = try fixture.client(timeout: 60)
        let added = addresses(1_000)
        let start = Date()
        expectOK(try c.command("begin"))
        try c.sendRaw(Array(added.map { "endpoint add canary \($0)\n" }.joined().utf8))
        for address in added {
            let reply = try XCTUnwrap(ControlValue(json: try XCTUnwrap(try c.readLine())))
            XCTAssertEqual(reply["staged"]?.bool, true, "\(address): \(reply.json)")
        }
        let staged = Date()
        let commit = expectOK(try c.command("commit"))
        let done = Date()
        XCTAssertEqual(commit["committed"]?.int, 1_000)
        let stagingSeconds = staged.timeIntervalSince(start)
        let commitSeconds = done.timeIntervalSince(staged)
        print("scale: staged 1000 endpoint adds in \(stagingSeconds) s, committed in \(commitSeconds) s")
        XCTAssertLessThan(commitSeconds, 5, "commit of 1,000 changes")
        XCTAssertLessThan(done.timeIntervalSince(start), 15, "begin, 1,000 staged changes and commit")
        XCTAssertEqual(try canaryEndpoints().count, 1_001)
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "blue", "still serving")

        // And back out again in one transaction.
        let back = Date()
        expectOK(try c.command("begin"))
        try c.sendRaw(Array(added.map { "endpoint remove canary \($0)\n" }.joined().utf8))
        for _ in added { XCTAssertEqual(ControlValue(json: try c.readLine() ?? "")?["staged"]?.bool, true) }
        XCTAssertEqual(expectOK(try c.command("commit"))["committed"]?.int, 1_000)
        print("scale: 1000 endpoint removes staged and committed in \(Date().timeIntervalSince(back)) s")
        XCTAssertLessThan(Date().timeIntervalSince(back), 15)
        XCTAssertEqual(try canaryEndpoints().count, 1)
    }

    func testAStateFileWithEightThousandEndpointsLoadsQuickly() throws {
        fixture.stopProxy()
        let added = addresses(8_000)
        let overrides: ControlValue = [
            "version": 1,
            "overrides": ["endpoints": ["canary": ["added": ControlValue(added), "draining": ControlValue(Array(added.prefix(100)))]]],
        ]
        try Data(overrides.json.utf8).write(to: URL(fileURLWithPath: fixture.statePath))
        let loaded = try ConfigLoader.load(path: fixture.configPath)
        let start = Date()
        let state = try RuntimeState(loaded: loaded, source: .file(fixture.configPath), log: { _ in })
        let seconds = Date().timeIntervalSince(start)
        print("scale: a state file with 8000 endpoints loaded in \(seconds) s")
        XCTAssertLessThan(seconds, 10)
        let pool = try XCTUnwrap(state.config[upstream: "canary"]?.pool(nil))
        XCTAssertEqual(pool.endpoints.count, 8_001)
        XCTAssertEqual(pool.servingCount, 7_901)
        XCTAssertEqual(state.overrides.endpoints["canary"]?.added.count, 8_000)

        // The running proxy with them: one more change stays quick.
        try fixture.start()
        let change = Date()
        expectOK(try fixture.command("endpoint drain canary \(added[4_000])"))
        print("scale: one endpoint drain on a pool of 8001 took \(Date().timeIntervalSince(change)) s")
        XCTAssertLessThan(Date().timeIntervalSince(change), 5)
    }
}
