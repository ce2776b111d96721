// Weighted ranges, rounding, weight-0 variants, monotonic ramps, rules and the override header.
import Routing
import XCTest

final class SplitTests: XCTestCase {
    func testThresholdsUseCumulativeRounding() {
        let cases: [(weights: [Int], thresholds: [Int32])] = [
            ([95, 5], [9500, 10000]),
            ([1, 1, 1], [3333, 6667, 10000]),
            ([33, 33, 34], [3300, 6600, 10000]),
            ([1, 2], [3333, 10000]),
            ([2, 1], [6667, 10000]),
            ([1, 31], [313, 10000]),                 // 312.5 rounds half up
            ([100], [10000]),
            ([0, 1], [0, 10000]),
            ([1, 0, 1], [5000, 5000, 10000]),
            ([1, 0], [10000, 10000]),
            ([-5, 1], [0, 10000]),                   // negative counts as 0
            ([0, 0], [0, 0]),                        // no positive weight: nothing owns a bucket
            ([], []),
            ([Int.max, Int.max], [5000, 10000]),     // clamped, no overflow
        ]
        for c in cases {
            XCTAssertEqual(Split.computeThresholds(c.weights), c.thresholds, "\(c.weights)")
        }
        for weights in [[1, 1, 1, 1, 1, 1, 1], [7, 13, 29, 51], [1, 9998, 1]] {
            let t = Split.computeThresholds(weights)
            XCTAssertEqual(t.last, Split.buckets)
            XCTAssertEqual(t, t.sorted(), "\(weights)")
        }
    }

    func testRangeBoundaries() {
        let s = split([95, 5])
        let cases: [(bucket: Int32, variant: Int)] = [
            (0, 0), (9499, 0), (9500, 1), (9999, 1), (10000, -1), (-1, -1),
        ]
        for c in cases { XCTAssertEqual(s.variant(forBucket: c.bucket), c.variant, "\(c.bucket)") }
        XCTAssertEqual(s.range(ofVariant: 0), 0..<9500)
        XCTAssertEqual(s.range(ofVariant: 1), 9500..<10000)
        XCTAssertEqual(split([0, 0]).variant(forBucket: 0), -1)
    }

    func testBoundariesThroughDecide() {
        let st = sticky()
        let snap = snapshot([route(target: .split(split([95, 5], sticky: st)))])
        for (bucket, variant) in [(Int32(9499), 0), (9500, 1), (0, 0), (9999, 1)] {
            let d = decide(snap, TestRequest(cookies: [("sy_checkout", cookieValue(st, bucket: bucket))]), random: 7)
            XCTAssertEqual(d.bucket, bucket)
            XCTAssertEqual(d.variant, variant, "bucket \(bucket)")
            XCTAssertEqual(d.upstream, variant)
            XCTAssertFalse(d.setCookie)
        }
    }

    func testChangingWeightsRecomputesThresholds() {
        var s = split([95, 5])
        s.variants[0].weight = 80
        s.variants[1].weight = 20
        XCTAssertEqual(s.thresholds, [8000, 10000])
        s.variants.append(Variant(name: "third", upstream: 2, weight: 100))
        XCTAssertEqual(s.thresholds, [4000, 5000, 10000])
    }

    func testWeightZeroVariantNeverChosenAndItsUsersFallThrough() {
        let s = split([1, 0, 1])
        for bucket in Int32(0)..<Split.buckets { XCTAssertNotEqual(s.variant(forBucket: bucket), 1) }
        XCTAssertEqual(s.variant(forBucket: 4999), 0)
        XCTAssertEqual(s.variant(forBucket: 5000), 2)
        XCTAssertTrue(s.range(ofVariant: 1).isEmpty)

        // Users assigned to "canary" under 1/1/1 keep their bucket and land on the new owner.
        let st = sticky()
        let before = split([1, 1, 1], sticky: st)
        let after = snapshot([route(target: .split(split([1, 0, 1], sticky: st)))])
        for bucket: Int32 in [3333, 4000, 5000, 6666] {
            XCTAssertEqual(before.variant(forBucket: bucket), 1)
            let d = decide(after, TestRequest(cookies: [("sy_checkout", cookieValue(st, bucket: bucket))]), random: 3)
            XCTAssertEqual(d.variant, bucket < 5000 ? 0 : 2, "bucket \(bucket)")
            XCTAssertFalse(d.setCookie)
        }
        for random in UInt64(0)..<5000 {
            XCTAssertNotEqual(decide(after, TestRequest(), random: random).variant, 1)
        }
    }

    func testRampIsMonotonic() {
        // Growing the canary from 10% to 50% never moves a canary bucket back to stable,
        // whichever position the canary has in the config.
        for canaryFirst in [false, true] {
            var previous: Split? = nil
            for canary in stride(from: 10, through: 50, by: 5) {
                let weights = canaryFirst ? [canary, 100 - canary] : [100 - canary, canary]
                let s = split(weights)
                let canaryIndex = canaryFirst ? 0 : 1
                if let previous {
                    var moved = 0
                    for bucket in Int32(0)..<Split.buckets where previous.variant(forBucket: bucket) == canaryIndex {
                        if s.variant(forBucket: bucket) != canaryIndex { moved += 1 }
                    }
                    XCTAssertEqual(moved, 0, "canary \(canary)%, canary first: \(canaryFirst)")
                }
                XCTAssertEqual(s.range(ofVariant: canaryIndex).count, canary * 100)
                previous = s
            }
        }
    }

    func testFreshBucketsFollowWeights() {
        let snap = snapshot([route(target: .split(split([95, 5])))])
        var canary = 0
        var random: UInt64 = 0x1234_5678
        for _ in 0..<20_000 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let d = decide(snap, TestRequest(), random: random)
            XCTAssertTrue((0..<Split.buckets).contains(d.bucket))
            XCTAssertFalse(d.setCookie)                   // no sticky: no cookie
            if d.variant == 1 { canary += 1 }
        }
        XCTAssertEqual(Double(canary) / 200, 5, accuracy: 1)
        // The same random value gives the same decision.
        XCTAssertEqual(decide(snap, TestRequest(), random: 42), decide(snap, TestRequest(), random: 42))
    }

    func testRulesInOrderBeforeOverrideAndWeights() {
        let rules = [
            Rule(source: .cookie(name: b("qa"), value: b("canary")), variant: 1),
            Rule(source: .header(name: b("x-team"), value: b("checkout")), variant: 2),
            Rule(source: .header(name: b("x-team"), value: b("checkout")), variant: 0),  // shadowed by the one above
            Rule(source: .cookie(name: b("qa"), value: b("stable")), variant: 0),
        ]
        let st = sticky()
        let snap = snapshot([route(target: .split(split([100, 0, 0], rules: rules, sticky: st)))])
        let cases: [(name: String, request: TestRequest, variant: Int)] = [
            ("cookie rule", TestRequest(cookies: [("qa", "canary")]), 1),
            ("cookie rule among others", TestRequest(cookies: [("a", "b"), ("qa", "canary"), ("z", "1")]), 1),
            ("header rule", TestRequest(headers: [("X-Team", "checkout")]), 2),
            ("first rule wins", TestRequest(headers: [("x-team", "checkout")], cookies: [("qa", "canary")]), 1),
            ("later rule", TestRequest(cookies: [("qa", "stable")]), 0),
            ("rule beats override", TestRequest(headers: [("x-switchyard-variant", "third")], cookies: [("qa", "canary")]), 1),
            ("override", TestRequest(headers: [("x-switchyard-variant", "canary")]), 1),
            ("second override value", TestRequest(headers: [("x-switchyard-variant", "nope"), ("x-switchyard-variant", "third")]), 2),
        ]
        for c in cases {
            let d = decide(snap, c.request, random: 9)
            XCTAssertEqual(d.variant, c.variant, c.name)
            XCTAssertEqual(d.upstream, c.variant, c.name)
            XCTAssertEqual(d.bucket, -1, c.name)         // pinned requests are not bucketed
            XCTAssertFalse(d.setCookie, c.name)          // a pin never sets a cookie
        }
        let notPinned: [(name: String, request: TestRequest)] = [
            ("rule value differs", TestRequest(cookies: [("qa", "Canary")])),
            ("rule header value differs", TestRequest(headers: [("x-team", "checkout2")])),
            ("override names no variant", TestRequest(headers: [("x-switchyard-variant", "CANARY")])),
            ("nothing", TestRequest()),
        ]
        for c in notPinned {
            let d = decide(snap, c.request, random: 9)
            XCTAssertEqual(d.variant, 0, c.name)
            XCTAssertTrue((0..<Split.buckets).contains(d.bucket), c.name)
            XCTAssertTrue(d.setCookie, c.name)
        }
    }

    func testOverrideHeaderCanBeRenamedOrDisabled() {
        let renamed = snapshot([route(target: .split(split([100, 0], overrideHeader: "x-qa")))])
        XCTAssertEqual(decide(renamed, TestRequest(headers: [("x-qa", "canary")]), random: 1).variant, 1)
        XCTAssertEqual(decide(renamed, TestRequest(headers: [("x-switchyard-variant", "canary")]), random: 1).variant, 0)
        let disabled = snapshot([route(target: .split(split([100, 0], overrideHeader: nil)))])
        XCTAssertEqual(decide(disabled, TestRequest(headers: [("x-switchyard-variant", "canary")]), random: 1).variant, 0)
    }

    func testSplitWithoutPositiveWeightHasNoUpstream() {
        let d = decide(snapshot([route(target: .split(split([0, 0])))]), TestRequest(), random: 5)
        XCTAssertEqual(d.route, 0)
        XCTAssertEqual(d.variant, -1)
        XCTAssertEqual(d.upstream, -1)
    }
}
