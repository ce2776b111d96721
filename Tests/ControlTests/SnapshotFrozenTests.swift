// The per-snapshot tables every worker uses (metric series ids, variant header lines) are made
// once per snapshot and shared: each worker used to rebuild them on every publish.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Proxy
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class SnapshotFrozenTests: XCTestCase {
    private func snapshot(version: UInt64, canary: Int = 10) throws -> Snapshot {
        let text = Doc.make(
            upstreams: #"{ "stable": { "endpoints": ["127.0.0.1:9001"] }, "canary": { "endpoints": ["127.0.0.1:9002"] } }"#,
            routes: #"""
            [{ "name": "shop", "split": [{ "variant": "stable", "upstream": "stable", "weight": \#(100 - canary) },
                                         { "variant": "canary", "upstream": "canary", "weight": \#(canary) }],
               "variantHeader": "X-Variant" },
             { "name": "plain", "match": { "pathPrefix": "/plain" }, "upstream": "stable" }]
            """#)
        return try SnapshotBuilder.build(try XCTUnwrap(parse(text)).config, version: version, registry: EndpointRegistry())
    }

    func testEveryWorkerGetsTheSameTablesForASnapshot() throws {
        let freezer = SnapshotFreezer()
        let series = MetricSeries()
        let first = try snapshot(version: 1)
        let a = freezer.frozen(first, series)
        XCTAssertTrue(freezer.frozen(first, series) === a, "a second worker adopting the same snapshot shares the tables")

        let lines = a.variantLines.map { String(decoding: a.variantArena[$0], as: UTF8.self) }
        XCTAssertEqual(lines, ["X-Variant: stable\r\n", "X-Variant: canary\r\n"])
        XCTAssertEqual(a.variantBase, [0, -1], "the plain route has no variant line")

        let second = try snapshot(version: 2, canary: 50)
        let b = freezer.frozen(second, series)
        XCTAssertFalse(b === a, "a new snapshot gets its own tables")
        XCTAssertTrue(freezer.frozen(second, series) === b)
        XCTAssertFalse(freezer.frozen(second, MetricSeries()) === b, "tables are per metric series as well")
    }
}
