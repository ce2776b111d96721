// The verdict of one goal: who wins, when, and the sentence that says so.
import Experiments
import XCTest

final class VerdictTests: XCTestCase {
    func testABetterTreatmentWins() throws {
        let verdict = try XCTUnwrap(Verdict(variants: [("A", Counts(conversions: 1_000, units: 10_000)),
                                                       ("B", Counts(conversions: 1_210, units: 10_000))], control: "A"))
        XCTAssertEqual(verdict.winner, "B")
        XCTAssertTrue(verdict.summary.hasPrefix("B converts better than A: 12.1% vs 10.0%, always-valid p = "), verdict.summary)
        let b = try XCTUnwrap(verdict.arms.last)
        XCTAssertEqual(b.zTest?.difference ?? 0, 0.021, accuracy: 1e-12)
        XCTAssertNotNil(b.rate)
        XCTAssertNil(verdict.arms[0].zTest)
    }

    func testTheControlWinsWhenItBeatsEveryTreatment() throws {
        let verdict = try XCTUnwrap(Verdict(variants: [("A", Counts(conversions: 1_500, units: 10_000)),
                                                       ("B", Counts(conversions: 1_000, units: 10_000)),
                                                       ("C", Counts(conversions: 1_100, units: 10_000))], control: "A"))
        XCTAssertEqual(verdict.winner, "A")
        XCTAssertTrue(verdict.summary.hasPrefix("A converts better than B, C"), verdict.summary)
    }

    func testTooFewUnitsIsNoWinnerYet() throws {
        let verdict = try XCTUnwrap(Verdict(variants: [("A", Counts(conversions: 10, units: 100)),
                                                       ("B", Counts(conversions: 12, units: 100))], control: "A"))
        XCTAssertNil(verdict.winner)
        XCTAssertTrue(verdict.summary.hasPrefix("No winner yet: B 12.0% vs A 10.0%"), verdict.summary)
        XCTAssertTrue(verdict.summary.hasSuffix("need more units"), verdict.summary)
    }

    func testTheRunningPValueCarriesAcrossLooks() throws {
        let first = try XCTUnwrap(Verdict(variants: [("A", Counts(conversions: 1_000, units: 10_000)),
                                                     ("B", Counts(conversions: 1_210, units: 10_000))], control: "A"))
        // Later counts alone show nothing; the always-valid p keeps what the earlier look saw.
        let later = [("A", Counts(conversions: 2_000, units: 20_000)), ("B", Counts(conversions: 2_010, units: 20_000))]
        let carried = try XCTUnwrap(Verdict(variants: later, control: "A", previous: ["B": first.arms[1].alwaysValid]))
        let fresh = try XCTUnwrap(Verdict(variants: later, control: "A"))
        XCTAssertEqual(carried.winner, "B")
        XCTAssertNil(fresh.winner)
    }

    func testEmptyOrInvalidArmsNeverTrap() throws {
        let verdict = try XCTUnwrap(Verdict(variants: [("A", Counts(conversions: 0, units: 0)),
                                                       ("B", Counts(conversions: 5, units: -3))], control: "A"))
        XCTAssertNil(verdict.winner)
        XCTAssertEqual(verdict.summary, "No winner yet: A has no valid units")
        XCTAssertNil(Verdict(variants: [("A", Counts(conversions: 0, units: 0))], control: "Z"))
        XCTAssertNil(Verdict(variants: [("A", Counts(conversions: 0, units: 0))], control: "A", alpha: .nan))
        XCTAssertEqual(Verdict(variants: [("A", Counts(conversions: 1, units: 2))], control: "A")?.winner, nil)
    }
}
