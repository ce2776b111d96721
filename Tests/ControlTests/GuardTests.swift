// The pure parts of guarded changes: option parsing, what a change touched and how it is put
// back (the inverse applied to the config after the change gives the config before it), and
// the p99 a bake reads from histogram differences.
@testable import Admin
@testable import CommandSocket
@testable import Config
@testable import Proxy
@testable import Rollouts
@testable import Runtime
import XCTest

final class GuardTests: XCTestCase {
    func testOptionsParseInBothFormsAndAreChecked() throws {
        let (args, options) = try GuardOptions.extract(["checkout", "--bake", "30", "--revert-if-error-rate=5%", "--no-warmup",
                                                        "--revert-if-p99-ms", "800", "--min-requests=3",
                                                        "--revert-if-p99-ratio", "1.5"], command: "flip")
        XCTAssertEqual(args, ["checkout", "--no-warmup"])
        XCTAssertEqual(options, GuardOptions(bakeSeconds: 30, maxErrorRate: 0.05, maxP99Ms: 800, maxP99Ratio: 1.5, minRequests: 3))
        XCTAssertNil(try GuardOptions.extract(["checkout", "--no-warmup"], command: "flip").options)

        for bad in [["--bake", "10"], ["--revert-if-error-rate", "0.1"], ["--bake", "0", "--revert-if-error-rate", "0.1"],
                    ["--bake", "10", "--revert-if-error-rate", "1.5"], ["--bake", "10", "--revert-if-p99-ms", "-1"],
                    ["--bake", "10", "--revert-if-error-rate", "0.1", "--min-requests", "0"], ["--bake"],
                    ["--bake", "10", "--bake", "20", "--revert-if-error-rate", "0.1"]] {
            XCTAssertThrowsError(try GuardOptions.extract(["x"] + bad, command: "flip"), "\(bad)")
        }
    }

    private func config() throws -> Config {
        try XCTUnwrap(parse(Doc.make(upstreams: #"""
            { "web": { "blue": { "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"] },
                       "green": { "endpoints": ["127.0.0.1:9003"] }, "live": "blue" },
              "canary": { "endpoints": ["127.0.0.1:9004"] }, "shadow": { "endpoints": ["127.0.0.1:9100"] } }
            """#, routes: #"""
            [{ "name": "shop", "split": [ { "variant": "stable", "upstream": "web", "weight": 90 },
                                         { "variant": "canary", "upstream": "canary", "weight": 10 } ] }]
            """#))?.config)
    }

    private func applying(_ changes: [RuntimeChange], to config: Config) throws -> Config {
        var overrides = Overrides()
        for c in changes { overrides.apply(c) }
        let applied = overrides.applied(to: config)
        XCTAssertEqual(applied.dropped, [])
        return applied.config
    }

    /// The inverse of `changes`, applied after them, gives back `before` in every value they touched.
    private func assertRoundTrip(_ changes: [RuntimeChange], line: UInt = #line) throws -> [GuardFacet] {
        let before = try config()
        let after = try applying(changes, to: before)
        let facets = GuardFacet.diff(changes, before: before, after: after)
        XCTAssertFalse(facets.isEmpty, line: line)
        let back = try applying(changes + facets.flatMap(\.inverse), to: before)
        for f in facets {
            XCTAssertEqual(GuardFacet.value(f.kind, in: back), f.before, f.name, line: line)
            XCTAssertEqual(GuardFacet.value(f.kind, in: after), f.after, f.name, line: line)
        }
        XCTAssertEqual(back, before, line: line)
        return facets
    }

    func testEveryKindOfChangeIsPutBack() throws {
        let flip = try assertRoundTrip([.live(upstream: "web", color: .green)])
        XCTAssertEqual(flip.map(\.name), ["live web"])
        XCTAssertEqual(GuardWatch.affected(by: flip, after: try config()), [.upstream("web", color: .green)])

        let weights = try assertRoundTrip([.weights(route: "shop", weights: [.init(variant: "stable", weight: 50),
                                                                             .init(variant: "canary", weight: 50)])])
        XCTAssertEqual(GuardWatch.affected(by: weights, after: try config()), [.variant(route: "shop", variant: "canary")])

        _ = try assertRoundTrip([.mirror(route: "shop", upstream: "shadow", percent: 10)])
        let blue = PoolKey(upstream: "web", color: .blue)
        _ = try assertRoundTrip([.endpoint(.add, pool: blue, address: "127.0.0.1:9010")])
        _ = try assertRoundTrip([.endpoint(.remove, pool: blue, address: "127.0.0.1:9002")])
        _ = try assertRoundTrip([.endpoint(.drain, pool: blue, address: "127.0.0.1:9002")])
        let all = try assertRoundTrip([
            .endpoint(.add, pool: PoolKey(upstream: "web", color: .green), address: "127.0.0.1:9011"),
            .live(upstream: "web", color: .green),
            .endpoint(.remove, pool: blue, address: "127.0.0.1:9001"),
            .weights(route: "shop", weights: [.init(variant: "canary", weight: 0)]),
        ])
        XCTAssertEqual(all.count, 4, "\(all.map(\.name))")
    }

    func testADrainedEndpointThatWasRemovedComesBackDraining() throws {
        let start = try applying([.endpoint(.drain, pool: PoolKey(upstream: "canary", color: nil), address: "127.0.0.1:9004"),
                                  .endpoint(.add, pool: PoolKey(upstream: "canary", color: nil), address: "127.0.0.1:9005")],
                                 to: try config())
        let change = RuntimeChange.endpoint(.remove, pool: PoolKey(upstream: "canary", color: nil), address: "127.0.0.1:9004")
        var staged = start
        try staged.stage(change)
        let facets = GuardFacet.diff([change], before: start, after: staged)
        XCTAssertEqual(facets.map { "\($0.before)>\($0.after)" }, ["draining>absent"])
        for c in facets.flatMap(\.inverse) { try staged.stage(c) }
        XCTAssertEqual(GuardFacet.value(facets[0].kind, in: staged), "draining")
    }

    func testP99ComesFromTheDifferenceOfTheHistograms() {
        var start = GuardSample()
        start.buckets[LatencyBuckets.count] = 50  // slow answers before the change do not count
        var now = start
        now.total = 100
        now.errors = 3
        now.buckets[0] = 99
        now.buckets[LatencyBuckets.count - 1] = 1
        let d = now.minus(start)
        XCTAssertEqual(d.errorRate, 0.03, accuracy: 1e-9)
        XCTAssertEqual(d.p99Ms, Double(LatencyBuckets.boundsNs[0]) / 1e6)
        now.buckets[LatencyBuckets.count - 1] = 5
        XCTAssertEqual(now.minus(start).p99Ms, Double(LatencyBuckets.boundsNs[LatencyBuckets.count - 1]) / 1e6)
    }
}
