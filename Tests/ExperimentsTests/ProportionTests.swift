// Wilson intervals, the normal distribution and the pooled z-test against scipy on the same counts.
import Experiments
import XCTest

final class ProportionTests: XCTestCase {
    /// (control conversions, control units, treatment conversions, treatment units).
    private let counts: [[Int]] = [
        [100, 1_000, 121, 1_000], [0, 10, 1, 10], [10, 10, 9, 10], [1, 1, 0, 1], [5, 7, 0, 3],
        [1_000, 10_000, 1_200, 10_000],                       // p ~ 1e-5
        [10_000, 100_000, 10_700, 100_000],                   // p ~ 1e-7
        [20_000, 200_000, 21_500, 200_000],                   // p ~ 1e-14
        [1, 1_000_000_000, 3, 1_000_000_000], [123_456_789, 1_000_000_000, 123_500_000, 1_000_000_000],
        [50, 100, 50, 100], [3, 17, 11, 23], [999, 1_000, 1_000, 1_000],
    ]

    func testZTestAndWilsonMatchScipy() throws {
        let rows = try Scipy.run("""
            data = json.load(sys.stdin)
            out = []
            for c1, n1, c2, n2 in data:
                c1, n1, c2, n2 = int(c1), int(n1), int(c2), int(n2)
                p1, p2, p = c1 / n1, c2 / n2, (c1 + c2) / (n1 + n2)
                se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
                z = (p2 - p1) / se if se > 0 else 0.0
                half = scipy.stats.norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
                ci1 = scipy.stats.binomtest(c1, n1).proportion_ci(0.95, method='wilson')
                ci2 = scipy.stats.binomtest(c2, n2).proportion_ci(0.95, method='wilson')
                out.append([z, float(2 * scipy.stats.norm.sf(abs(z))), p2 - p1 - half, p2 - p1 + half,
                            ci1.low, ci1.high, ci2.low, ci2.high])
            print(json.dumps(out))
            """, input: Scipy.table(counts.map { $0.map(Double.init) }))
        XCTAssertEqual(rows.count, counts.count)
        for (c, row) in zip(counts, rows) {
            let control = Counts(conversions: c[0], units: c[1]), treatment = Counts(conversions: c[2], units: c[3])
            let test = try XCTUnwrap(TwoProportionTest.zTest(control: control, treatment: treatment))
            assertClose(test.z, row[0], relative: 1e-9, "z \(c)")
            assertClose(test.pValue, row[1], relative: 1e-6, "p \(c)")
            XCTAssertEqual(test.lower, row[2], accuracy: 1e-9, "difference interval \(c)")
            XCTAssertEqual(test.upper, row[3], accuracy: 1e-9, "difference interval \(c)")
            let a = try XCTUnwrap(Proportion.wilson(conversions: c[0], units: c[1]))
            let b = try XCTUnwrap(Proportion.wilson(conversions: c[2], units: c[3]))
            for (ours, reference) in zip([a.lower, a.upper, b.lower, b.upper], row[4...]) {
                assertClose(ours, reference, relative: 1e-6, "Wilson \(c)")
            }
        }
    }

    func testNormalQuantileAndCDFMatchScipy() throws {
        let probabilities = [1e-300, 1e-100, 1e-20, 1e-12, 1e-6, 0.001, 0.01, 0.02425, 0.025, 0.1, 0.3,
                             0.5, 0.7, 0.9, 0.95, 0.975, 0.97575, 0.99, 0.999, 1 - 1e-6, 1 - 1e-12]
        let points = [-37.0, -20, -8, -5, -1.96, -1, 0, 0.5, 1.644853, 3, 8]
        let rows = try Scipy.run("""
            data = json.load(sys.stdin)
            print(json.dumps([[float(scipy.stats.norm.ppf(p)) for p in data[0]],
                              [float(scipy.stats.norm.cdf(x)) for x in data[1]],
                              [float(scipy.stats.norm.sf(x)) for x in data[1]]]))
            """, input: Scipy.table([probabilities, points]))
        for (p, reference) in zip(probabilities, rows[0]) {
            assertClose(Proportion.normalQuantile(p), reference, relative: 1e-9, "ppf(\(p))")
        }
        for (x, reference) in zip(points, rows[1]) {
            assertClose(Proportion.normalCDF(x), reference, relative: 1e-9, "cdf(\(x))")
        }
        for (x, reference) in zip(points, rows[2]) {
            assertClose(Proportion.normalSurvival(x), reference, relative: 1e-9, "sf(\(x))")
        }
    }

    func testInvalidCountsAreNoEstimate() {
        XCTAssertNil(Proportion.wilson(conversions: 0, units: 0))
        XCTAssertNil(Proportion.wilson(conversions: -1, units: 10))
        XCTAssertNil(Proportion.wilson(conversions: 11, units: 10))
        XCTAssertNil(Proportion.wilson(conversions: 1, units: 10, confidence: .nan))
        XCTAssertEqual(Proportion.wilson(conversions: Int.max, units: Int.max)?.upper, 1)
        XCTAssertNil(TwoProportionTest.zTest(control: Counts(conversions: 0, units: 0), treatment: Counts(conversions: 1, units: 2)))
        XCTAssertNil(TwoProportionTest.zTest(control: Counts(conversions: 3, units: 2), treatment: Counts(conversions: 1, units: 2)))
        let nobody = TwoProportionTest.zTest(control: Counts(conversions: 0, units: 5), treatment: Counts(conversions: 0, units: 9))
        XCTAssertEqual(nobody?.z, 0)
        XCTAssertEqual(nobody?.pValue, 1)
        let huge = TwoProportionTest.zTest(control: Counts(conversions: Int.max / 2, units: Int.max),
                                           treatment: Counts(conversions: Int.max, units: Int.max))
        XCTAssertEqual(huge?.pValue, 0)
        XCTAssertTrue(Proportion.normalQuantile(.nan).isNaN)
        XCTAssertTrue(Proportion.normalQuantile(1.5).isNaN)
        XCTAssertEqual(Proportion.normalQuantile(0), -.infinity)
        XCTAssertEqual(Proportion.normalQuantile(1), .infinity)
    }
}
