// Runtime edits of a Config (weights, flips, endpoints, mirrors) rebuilt into snapshots, the
// builder's own checks, and stable endpoint ids.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import TestSupport
import XCTest
import Routing
@testable import Runtime
import XCTest

final class SnapshotBuilderTests: XCTestCase {
    private func canaryConfig() throws -> Config {
        let text = Doc.make(
            upstreams: #"""
            { "stable": { "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"] }, "canary": { "endpoints": ["127.0.0.1:9003"] },
              "shadow": { "endpoints": ["127.0.0.1:9100"] },
              "web": { "blue": { "endpoints": ["127.0.0.1:9201"] }, "green": { "endpoints": ["127.0.0.1:9202"] }, "live": "blue" } }
            """#,
            routes: #"""
            [{ "name": "api", "split": [{ "variant": "stable", "upstream": "stable", "weight": 95 },
                                        { "variant": "canary", "upstream": "canary", "weight": 5 }],
               "rules": [{ "header": { "X-Canary": "1" }, "variant": "canary" }] },
             { "name": "web", "upstream": "web", "mirror": [{ "upstream": "shadow", "percent": 10 }] }]
            """#)
        return try XCTUnwrap(parse(text)).config
    }

    private func split(_ snapshot: Snapshot, route: Int = 0) throws -> Split {
        guard case .split(let split) = snapshot.routes[route].target else { throw TestError("the fixture is broken: route \(route) has no split") }
        return split
    }

    func testSetWeightsMovesThresholds() throws {
        var config = try canaryConfig()
        let registry = EndpointRegistry()
        XCTAssertEqual(try split(SnapshotBuilder.build(config, version: 1, registry: registry)).thresholds, [9500, 10_000])
        config[route: "api"]?.split?.variants[1].weight = 20
        config[route: "api"]?.split?.variants[0].weight = 80
        XCTAssertEqual(try split(SnapshotBuilder.build(config, version: 2, registry: registry)).thresholds, [8000, 10_000])
    }

    func testZeroTotalWeightIsRefused() throws {
        var config = try canaryConfig()
        config[route: "api"]?.split?.variants[0].weight = 0
        config[route: "api"]?.split?.variants[1].weight = 0
        XCTAssertThrowsError(try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry())) { error in
            XCTAssertEqual((error as? ConfigError)?.messages, ["routes[0].split: the total weight must be greater than 0"])
        }
    }

    func testFlipChangesTheLiveColor() throws {
        var config = try canaryConfig()
        var bg = try XCTUnwrap(config[upstream: "web"]?.blueGreen)
        bg.live = bg.live.other
        config[upstream: "web"]?.kind = .blueGreen(bg)
        let snapshot = try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry())
        let web = try XCTUnwrap(snapshot.upstreamIndex(named: "web"))
        guard case .blueGreen(let bg) = snapshot.upstreams[web].kind else { return XCTFail("web is blue/green") }
        XCTAssertEqual(bg.live, .green)
        XCTAssertNil(bg.previewHeader)
    }

    func testEndpointEditsKeepIdsStable() throws {
        var config = try canaryConfig()
        let registry = EndpointRegistry()
        let before = try SnapshotBuilder.build(config, version: 1, registry: registry)
        let count = registry.count
        XCTAssertEqual(count, 6)

        // Add an endpoint, drain another, remove a third.
        let added = try Address(parsing: "127.0.0.1:9004")
        XCTAssertTrue(config[upstream: "stable"]!.updatePool(nil) { pool in
            pool.endpoints.append(Config.Endpoint(address: added, weight: 2))
            pool.endpoints[pool.endpointIndex(address: "127.0.0.1:9001")!].draining = true
            pool.endpoints.remove(at: pool.endpointIndex(address: "127.0.0.1:9002")!)
        })
        XCTAssertFalse(config[upstream: "stable"]!.updatePool(.blue) { _ in }, "a plain pool has no colors")
        XCTAssertTrue(config[upstream: "web"]!.updatePool(.green) { $0.endpoints[0].weight = 4 })
        let after = try SnapshotBuilder.build(config, version: 2, registry: registry)

        let stable = after.upstreams[after.upstreamIndex(named: "stable")!].pool(nil).endpoints
        XCTAssertEqual(stable.map(\.address), ["127.0.0.1:9001", "127.0.0.1:9004"])
        XCTAssertEqual(stable.map(\.draining), [true, false])
        XCTAssertEqual(stable.map(\.weight), [1, 2])
        let old = before.upstreams[before.upstreamIndex(named: "stable")!].pool(nil).endpoints
        XCTAssertEqual(stable[0].id, old[0].id, "an address keeps its id")
        XCTAssertEqual(stable[1].id, count, "a new address gets the next id")
        XCTAssertEqual(after.upstreams[after.upstreamIndex(named: "web")!].pool(.green).endpoints[0].weight, 4)
    }

    func testEmptyPoolAndDuplicateEndpointAreRefused() throws {
        var config = try canaryConfig()
        config[upstream: "canary"]?.updatePool(nil) { $0.endpoints.removeAll() }
        config[upstream: "stable"]?.updatePool(nil) { $0.endpoints.append($0.endpoints[0]) }
        XCTAssertThrowsError(try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry())) { error in
            XCTAssertEqual((error as? ConfigError)?.messages, [
                "upstreams.canary.endpoints: must list at least one endpoint",
                "upstreams.stable.endpoints[2]: duplicate endpoint 127.0.0.1:9001",
            ])
        }
    }

    func testSetMirrorAddsChangesAndRemoves() throws {
        var config = try canaryConfig()
        config[route: "api"]?.mirrors.append(Config.Mirror(upstream: "shadow", percent: 0.5))
        let index = try XCTUnwrap(config[route: "web"]?.mirrorIndex(upstream: "shadow"))
        config[route: "web"]?.mirrors[index].percent = 50
        var snapshot = try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.routes[0].mirrors.map(\.ppm), [5_000])
        XCTAssertEqual(snapshot.routes[1].mirrors.map(\.ppm), [500_000])

        config[route: "web"]?.mirrors.remove(at: index)
        snapshot = try SnapshotBuilder.build(config, version: 3, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.routes[1].mirrors, [])
    }

    func testDanglingReferencesAreRefused() throws {
        var config = try canaryConfig()
        config[upstream: "shadow"] = nil
        config[route: "api"]?.split?.rules[0].variant = "gone"
        config[route: "web"]?.mirrors[0].percent = 0
        XCTAssertThrowsError(try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry())) { error in
            XCTAssertEqual(Set((error as? ConfigError)?.messages ?? []), [
                #"routes[0].rules[0].variant: unknown variant "gone""#,
                #"routes[1].mirror[0].upstream: unknown upstream "shadow""#,
                "routes[1].mirror[0].percent: must be greater than 0 and at most 100, got 0.0",
            ])
        }
    }

    func testUpstreamSubscriptKeepsNameOrder() throws {
        var config = try canaryConfig()
        config[upstream: "aaa"] = Config.Upstream(name: "ignored", kind: .pool(Config.Pool(endpoints: [
            Config.Endpoint(address: try Address(parsing: "127.0.0.1:9500")),
        ])))
        XCTAssertEqual(config.upstreams.map(\.name), ["aaa", "canary", "shadow", "stable", "web"])
        XCTAssertEqual(config.referencedUpstreams, ["stable", "canary", "web", "shadow"])
        config[route: "extra"] = Config.Route(name: "x", target: .upstream("aaa"))
        XCTAssertEqual(config.routes.map(\.name), ["api", "web", "extra"])
        let snapshot = try SnapshotBuilder.build(config, version: 9, registry: EndpointRegistry())
        guard case .upstream(let index) = snapshot.routes[2].target else { return XCTFail("extra has one upstream") }
        XCTAssertEqual(snapshot.upstreams[index].name, "aaa")
        XCTAssertEqual(snapshot.upstreams[index].mirrorMaxInFlight, 100)
    }

    func testRegistryAssignsDenseStableIds() async {
        let registry = EndpointRegistry()
        XCTAssertEqual(registry.id(for: "127.0.0.1:1"), 0)
        XCTAssertEqual(registry.id(for: "[::1]:1"), 1)
        XCTAssertEqual(registry.id(for: "127.0.0.1:1"), 0)
        XCTAssertEqual(registry.address(for: 1), "[::1]:1")
        XCTAssertNil(registry.address(for: 2))
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for n in 0..<200 { _ = registry.id(for: "10.0.\(task % 2).\(n):80") }
                }
            }
        }
        XCTAssertEqual(registry.count, 2 + 400)
        let ids = (0..<200).map { registry.id(for: "10.0.0.\($0):80") } + (0..<200).map { registry.id(for: "10.0.1.\($0):80") }
        XCTAssertEqual(Set(ids).count, 400)
        XCTAssertEqual(Set(ids), Set(2..<402))
    }
}
