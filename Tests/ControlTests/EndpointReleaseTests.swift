// Endpoints removed from every pool leave /metrics and the endpoint registry: 2,004 endpoints
// added and removed again used to leave 2,004 stale switchyard_endpoint_in_flight series.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Proxy
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class EndpointReleaseTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    private func addresses(_ count: Int) -> [String] {
        (0..<count).map { "127.2.\($0 / 250).\($0 % 250 + 1):9" }
    }

    private func inFlightSeries() -> [String] {
        AdminMetrics(server: fixture.server, registry: fixture.state.registry).text()
            .split(separator: "\n").filter { $0.hasPrefix("switchyard_endpoint_in_flight{") }.map(String.init)
    }

    private func transaction(_ lines: [String]) throws {
        let c = try fixture.client(timeout: 60)
        expectOK(try c.command("begin"))
        try c.sendRaw(Array(lines.map { $0 + "\n" }.joined().utf8))
        for line in lines { XCTAssertEqual(ControlValue(json: try c.readLine() ?? "")?["staged"]?.bool, true, line) }
        XCTAssertEqual(expectOK(try c.command("commit"))["committed"]?.int, lines.count)
    }

    func testRemovedEndpointsLeaveMetricsAndTheRegistry() throws {
        let before = inFlightSeries()
        let held = fixture.state.registry.heldCount
        XCTAssertEqual(before.count, held, "one series per endpoint of the snapshot")
        let added = addresses(2_004)

        try transaction(added.map { "endpoint add canary \($0)" })
        XCTAssertEqual(inFlightSeries().count, before.count + 2_004)
        XCTAssertEqual(fixture.state.registry.heldCount, held + 2_004)

        try transaction(added.map { "endpoint remove canary \($0)" })
        let after = inFlightSeries()
        XCTAssertEqual(after, before, "no series for removed endpoints")
        XCTAssertFalse(after.contains { $0.contains("127.2.") })
        XCTAssertEqual(fixture.state.registry.heldCount, held, "their registry entries are released")

        // Reported in-flight counts of removed endpoints do not bring their entries back.
        _ = expectOK(try fixture.command("show upstreams"))
        XCTAssertEqual(fixture.state.registry.heldCount, held)

        // Added again, an address serves and is exported again (under a new id).
        try transaction(["endpoint add canary \(added[0])"])
        XCTAssertEqual(inFlightSeries().filter { $0.contains("\"\(added[0])\"") }.count, 1)
        XCTAssertEqual(try fixture.http().get(headers: ["X-Switchyard-Variant: stable"]).name, "blue", "still serving")
    }

    func testAnEntryInFlightIsKeptUntilItsExchangesEnd() {
        let registry = EndpointRegistry()
        let a = registry.id(for: "10.0.0.1:80")
        let b = registry.id(for: "10.0.0.2:80")
        let c = registry.id(for: "10.0.0.3:80")
        var inFlight: [Int: UInt64] = [b: 1]
        XCTAssertEqual(registry.release(keeping: [a]) { inFlight[$0] ?? 0 }, 1, "c goes, b is still in use")
        XCTAssertEqual(registry.address(for: a), "10.0.0.1:80")
        XCTAssertEqual(registry.address(for: b), "10.0.0.2:80")
        XCTAssertNil(registry.address(for: c))
        XCTAssertNil(registry.existingID(for: "10.0.0.3:80"))
        inFlight[b] = 0
        XCTAssertEqual(registry.release(keeping: [a]) { inFlight[$0] ?? 0 }, 1)
        XCTAssertNil(registry.address(for: b))
        XCTAssertEqual(registry.heldCount, 1)
        XCTAssertNotEqual(registry.id(for: "10.0.0.3:80"), c, "a released id is never handed out again")
    }
}

/// A publish that keeps every endpoint skips the release walk only when nothing is left to give
/// back: an id a refused or unpublished build took still goes at the next publish.
final class EndpointReleaseSkipTests: XCTestCase {
    private func state() throws -> RuntimeState {
        let text = Doc.make(
            upstreams: #"""
            { "stable": { "endpoints": ["127.0.0.1:9001"] }, "canary": { "endpoints": ["127.0.0.1:9002", "127.0.0.1:9003"] } }
            """#,
            routes: #"""
            [{ "name": "shop", "split": [{ "variant": "stable", "upstream": "stable", "weight": 90 },
                                         { "variant": "canary", "upstream": "canary", "weight": 10 }] }]
            """#)
        return try RuntimeState(loaded: try XCTUnwrap(parse(text)), source: .file("t.json"), log: { _ in })
    }

    private func weights(_ canary: Int) -> RuntimeChange {
        .weights(route: "shop", weights: [.init(variant: "stable", weight: 100 - canary), .init(variant: "canary", weight: canary)])
    }

    func testSameEndpointsAreRecognized() throws {
        let state = try state()
        let before = state.snapshot
        try state.queue.sync { _ = try state.commit([weights(50)]) }
        XCTAssertTrue(before.hasSameEndpoints(as: state.snapshot), "a weight change keeps every endpoint")
        try state.queue.sync { _ = try state.commit([.endpoint(.remove, pool: PoolKey(upstream: "canary", color: nil), address: "127.0.0.1:9003")]) }
        XCTAssertFalse(before.hasSameEndpoints(as: state.snapshot), "a removed endpoint is a change")
    }

    func testAnIdTakenSinceTheLastReleaseGoesAtTheNextPublish() throws {
        let state = try state()
        let held = state.registry.heldCount
        XCTAssertEqual(held, 3)
        // As a build that was refused or never published would.
        _ = state.registry.id(for: "127.0.0.1:9999")
        XCTAssertEqual(state.registry.heldCount, held + 1)
        try state.queue.sync { _ = try state.commit([weights(20)]) }
        XCTAssertEqual(state.registry.heldCount, held, "released although the endpoints did not change")
        try state.queue.sync { _ = try state.commit([weights(30)]) }
        XCTAssertEqual(state.registry.heldCount, held)
    }
}
