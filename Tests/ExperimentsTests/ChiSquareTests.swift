// The chi-square tail and the sample-ratio check against scipy.stats.chi2.sf and
// scipy.stats.chisquare on the same numbers, tails down to 1e-300 included.
import Experiments
import XCTest

final class ChiSquareTests: XCTestCase {
    func testChiSquareSurvivalMatchesScipy() throws {
        let degrees = [1, 2, 3, 4, 5, 7, 10, 20, 50, 100, 500, 1000]
        let multiples = [1e-6, 0.01, 0.1, 0.5, 0.9, 1, 1.1, 1.5, 2, 3, 5, 10]
        var cases = degrees.flatMap { k in multiples.map { [Double(k) * $0, Double(k)] } }
        // Far tails: p-values near 1e-12, 1e-100, 1e-300, and past underflow.
        cases += [[55, 1], [60, 3], [470, 1], [1370, 1], [1380, 2], [1500, 10], [1600, 1], [3000, 100]]
        let rows = try Scipy.run("""
            data = json.load(sys.stdin)
            print(json.dumps([[float(scipy.stats.chi2.sf(x, k))] for x, k in data]))
            """, input: Scipy.table(cases))
        XCTAssertEqual(rows.count, cases.count)
        for (c, row) in zip(cases, rows) {
            let ours = Statistics.chiSquareSurvival(c[0], degreesOfFreedom: Int(c[1]))
            let reference = row[0]
            if reference > 1e-300 {
                assertClose(ours, reference, relative: 1e-9, "chi2.sf(\(c[0]), \(c[1]))")
            } else {
                XCTAssertLessThanOrEqual(ours, 1e-300, "chi2.sf(\(c[0]), \(c[1]))")
            }
        }
    }

    func testSampleRatioMatchesScipy() throws {
        var cases: [(observed: [Int], weights: [Double])] = [
            ([50, 50], [1, 1]), ([48, 52], [50, 50]), ([3, 5], [1, 1]), ([0, 7], [1, 1]),
            ([950, 50], [95, 5]), ([9_400, 600], [95, 5]), ([50_000, 51_500], [1, 1]),   // p ~ 3e-6
            ([100_000, 103_500], [1, 1]),                                                // p ~ 1e-14
            ([1_000_000_000, 1_000_100_000], [1, 1]), ([1_000_000_000, 999_999_000], [1, 1]),
            ([333, 333, 334], [1, 1, 1]), ([5_000, 3_000, 2_300], [50, 30, 20]),
            ([10, 20, 30, 40], [0.1, 0.2, 0.3, 0.4]), ([1, 0, 0], [1, 1, 1]),
            ([500, 0, 500], [1, 0, 1]),   // a weight-0 variant without units takes no part
            ([20_000, 21_000, 19_000, 20_000, 20_000], [1, 1, 1, 1, 1]),
        ]
        for i in 1...20 { cases.append(([1_000 * i, 1_000 * i + 7 * i * i], [1, 1.01])) }
        let input = "[" + cases.map { "[\($0.observed), \($0.weights)]" }.joined(separator: ",") + "]"
        let rows = try Scipy.run("""
            data = json.load(sys.stdin)
            out = []
            for obs, w in data:
                kept = [(o, x) for o, x in zip(obs, w) if x > 0]
                total = sum(o for o, _ in kept)
                f_exp = [total * x / sum(x for _, x in kept) for _, x in kept]
                r = scipy.stats.chisquare([o for o, _ in kept], f_exp=f_exp)
                out.append([float(r.statistic), float(r.pvalue)])
            print(json.dumps(out))
            """, input: input)
        XCTAssertEqual(rows.count, cases.count)
        for (c, row) in zip(cases, rows) {
            let result = try XCTUnwrap(SampleRatio.check(observed: c.observed, weights: c.weights))
            assertClose(result.statistic, row[0], relative: 1e-6, "statistic \(c)")
            assertClose(result.pValue, row[1], relative: 1e-6, "p-value \(c)")
            XCTAssertEqual(result.degreesOfFreedom, c.weights.filter { $0 > 0 }.count - 1)
            XCTAssertEqual(result.total, c.observed.reduce(0, +))
        }
    }

    func testSampleRatioResultNamesTheExpectedShares() throws {
        let result = try XCTUnwrap(SampleRatio.check(observed: [900, 0, 100], weights: [9, 0, 1]))
        XCTAssertEqual(result.expectedShares, [0.9, 0, 0.1])
        XCTAssertEqual(result.expectedCounts, [900, 0, 100])
        XCTAssertEqual(result.degreesOfFreedom, 1)
        XCTAssertEqual(result.pValue, 1)
    }

    func testUnitsInAWeightZeroVariantAreAMismatchOutright() throws {
        let result = try XCTUnwrap(SampleRatio.check(observed: [500, 1, 500], weights: [1, 0, 1]))
        XCTAssertEqual(result.pValue, 0)
        XCTAssertEqual(result.statistic, .infinity)
        XCTAssertTrue(result.isMismatch(minimumUnits: 100))
    }

    func testFewerThanTwoWeightedVariantsIsNoTest() {
        XCTAssertNil(SampleRatio.check(observed: [10, 0], weights: [1, 0]))
        XCTAssertNil(SampleRatio.check(observed: [], weights: []))
        XCTAssertNil(SampleRatio.check(observed: [1, 2], weights: [1]))
        XCTAssertNil(SampleRatio.check(observed: [-1, 2], weights: [1, 1]))
        XCTAssertNil(SampleRatio.check(observed: [1, 2], weights: [.nan, 1]))
        XCTAssertNil(SampleRatio.check(observed: [1, 2], weights: [-1, 2]))
        XCTAssertNil(SampleRatio.check(observed: [Int.max, 1], weights: [1, 1]))
        XCTAssertNil(SampleRatio.check(observed: [1, 2], weights: [.greatestFiniteMagnitude, .greatestFiniteMagnitude]))
        XCTAssertEqual(SampleRatio.check(observed: [0, 0], weights: [1, 1])?.pValue, 1)
    }

    func testMismatchNeedsBothASmallPValueAndEnoughUnits() {
        XCTAssertTrue(SampleRatio.isMismatch(pValue: 0.0009, units: 100))
        XCTAssertFalse(SampleRatio.isMismatch(pValue: 0.0009, units: 99))
        XCTAssertFalse(SampleRatio.isMismatch(pValue: 0.001, units: 1_000))
        XCTAssertFalse(SampleRatio.isMismatch(pValue: .nan, units: 1_000))
        XCTAssertTrue(SampleRatio.isMismatch(pValue: 0.009, units: 10, threshold: 0.01, minimumUnits: 10))
    }

    func testInvalidChiSquareInputsAreNaNOrBounds() {
        XCTAssertTrue(Statistics.chiSquareSurvival(.nan, degreesOfFreedom: 1).isNaN)
        XCTAssertTrue(Statistics.chiSquareSurvival(1, degreesOfFreedom: 0).isNaN)
        XCTAssertTrue(Statistics.chiSquareSurvival(1, degreesOfFreedom: Int.min).isNaN)
        XCTAssertEqual(Statistics.chiSquareSurvival(-3, degreesOfFreedom: 2), 1)
        XCTAssertEqual(Statistics.chiSquareSurvival(0, degreesOfFreedom: 2), 1)
        XCTAssertEqual(Statistics.chiSquareSurvival(.infinity, degreesOfFreedom: 2), 0)
        XCTAssertEqual(Statistics.chiSquareSurvival(1e308, degreesOfFreedom: Int.max), 0, accuracy: 1)
        XCTAssertTrue(Statistics.regularizedUpperGamma(-1, 1).isNaN)
    }
}
