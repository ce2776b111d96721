// The mSPRT against the paper's formula computed independently in python on the same counts, and
// its two promises: under the null, peeking every day rarely crosses alpha; a real effect crosses.
import Experiments
import TestSupport
import XCTest

final class SequentialTestTests: XCTestCase {
    func testLikelihoodRatioAndIntervalMatchTheFormula() throws {
        let counts: [[Int]] = [
            [100, 1_000, 121, 1_000], [1_000, 10_000, 1_200, 10_000], [1_000, 10_000, 1_010, 10_000],
            [3, 17, 11, 23], [0, 10, 1, 10], [20_000, 200_000, 21_500, 200_000], [5, 5, 4, 5],
            [1, 1_000_000_000, 3, 1_000_000_000], [50, 100, 50, 100],
        ]
        let taus = [0.02, 0.05, 0.1]
        let cases = taus.flatMap { tau in counts.map { $0.map(Double.init) + [tau] } }
        let rows = try Scipy.run("""
            data = json.load(sys.stdin)
            out = []
            for c1, n1, c2, n2, tau in data:
                p1, p2 = c1 / n1, c2 / n2
                v = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
                theta = p2 - p1
                log_lambda = math.log(math.sqrt(v / (v + tau ** 2))) + theta ** 2 * tau ** 2 / (2 * v * (v + tau ** 2))
                # {theta0 : Lambda(theta0) < 1/alpha}, solved for theta0 with alpha = 0.05
                half = math.sqrt((2 * v * (v + tau ** 2) / tau ** 2) * (math.log(1 / 0.05) - math.log(math.sqrt(v / (v + tau ** 2)))))
                out.append([log_lambda, theta - half, theta + half])
            print(json.dumps(out))
            """, input: Scipy.table(cases))
        XCTAssertEqual(rows.count, cases.count)
        for (c, row) in zip(cases, rows) {
            let control = Counts(conversions: Int(c[0]), units: Int(c[1]))
            let treatment = Counts(conversions: Int(c[2]), units: Int(c[3]))
            let logLambda = try XCTUnwrap(SequentialTest.logMixtureLikelihoodRatio(control: control, treatment: treatment, tau: c[4]))
            XCTAssertEqual(logLambda, row[0], accuracy: 1e-9 * max(1, abs(row[0])), "log Λ \(c)")
            XCTAssertEqual(SequentialTest.pValueOfLook(control: control, treatment: treatment, tau: c[4]),
                           min(1, exp(-row[0])), accuracy: 1e-12, "p \(c)")
            let interval = try XCTUnwrap(SequentialTest.interval(control: control, treatment: treatment, tau: c[4]))
            XCTAssertEqual(interval.lowerBound, row[1], accuracy: 1e-9, "interval \(c)")
            XCTAssertEqual(interval.upperBound, row[2], accuracy: 1e-9, "interval \(c)")
        }
    }

    func testPeekingEveryDayUnderTheNullRarelyCrossesAlpha() {
        var random = SeededGenerator(seed: 20_261_207)
        let experiments = 200, days = 20, unitsPerDay = 500, rate = 0.1
        var alwaysValidCrossed = 0, peekingZTestCrossed = 0
        for _ in 0..<experiments {
            var control = Counts(conversions: 0, units: 0), treatment = Counts(conversions: 0, units: 0)
            var p = AlwaysValidPValue()
            var zCrossed = false
            for _ in 0..<days {
                for _ in 0..<unitsPerDay {
                    if random.nextUnit() < rate { control.conversions += 1 }
                    if random.nextUnit() < rate { treatment.conversions += 1 }
                }
                control.units += unitsPerDay
                treatment.units += unitsPerDay
                p.update(control: control, treatment: treatment)
                if let z = TwoProportionTest.zTest(control: control, treatment: treatment), z.pValue < 0.05 { zCrossed = true }
            }
            if p.value < 0.05 { alwaysValidCrossed += 1 }
            if zCrossed { peekingZTestCrossed += 1 }
        }
        // alpha plus two binomial standard deviations of 200 draws at 0.05.
        XCTAssertLessThanOrEqual(Double(alwaysValidCrossed) / Double(experiments), 0.05 + 2 * (0.05 * 0.95 / 200).squareRoot())
        // The same simulation is sharp enough to see what peeking does to a fixed-horizon test.
        XCTAssertGreaterThan(Double(peekingZTestCrossed) / Double(experiments), 0.1)
    }

    func testARealEffectCrosses() {
        let control = Counts(conversions: 1_000, units: 10_000), treatment = Counts(conversions: 1_200, units: 10_000)
        var p = AlwaysValidPValue()
        XCTAssertLessThan(p.update(control: control, treatment: treatment), 0.01)
        let interval = SequentialTest.interval(control: control, treatment: treatment)
        XCTAssertGreaterThan(interval?.lowerBound ?? -1, 0)
    }

    func testTheRunningPValueNeverRises() {
        var p = AlwaysValidPValue()
        let first = p.update(control: Counts(conversions: 100, units: 1_000), treatment: Counts(conversions: 140, units: 1_000))
        let second = p.update(control: Counts(conversions: 200, units: 2_000), treatment: Counts(conversions: 200, units: 2_000))
        XCTAssertLessThan(first, 1)
        XCTAssertEqual(second, first)
    }

    func testNoEvidenceIsPValueOneAndNoInterval() {
        let empty = Counts(conversions: 0, units: 0)
        let nobody = Counts(conversions: 0, units: 100), everybody = Counts(conversions: 100, units: 100)
        let invalid = Counts(conversions: -1, units: Int.min)
        var p = AlwaysValidPValue()
        for (a, b) in [(empty, nobody), (nobody, nobody), (everybody, everybody), (invalid, nobody), (nobody, invalid)] {
            XCTAssertEqual(p.update(control: a, treatment: b), 1)
            XCTAssertNil(SequentialTest.mixtureLikelihoodRatio(control: a, treatment: b))
            XCTAssertNil(SequentialTest.interval(control: a, treatment: b))
        }
        XCTAssertNil(SequentialTest.logMixtureLikelihoodRatio(control: nobody, treatment: everybody, tau: 0))
        XCTAssertNil(SequentialTest.interval(control: Counts(conversions: 1, units: 2), treatment: nobody, alpha: 0))
        // All converted in one arm, none in the other: V = 0, no verdict rather than a division by 0.
        XCTAssertEqual(SequentialTest.pValueOfLook(control: nobody, treatment: everybody), 1)
        let overwhelming = SequentialTest.pValueOfLook(control: Counts(conversions: 1, units: 1_000_000_000),
                                                       treatment: Counts(conversions: 999_999_999, units: 1_000_000_000))
        XCTAssertEqual(overwhelming, 0)
    }
}
