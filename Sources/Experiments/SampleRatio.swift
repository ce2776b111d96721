// The sample-ratio check: do the units each variant received match the split's weights? A
// mismatch means assignment or logging is broken, and every comparison of that experiment is
// suspect, whatever its p-value.
import Foundation

public struct SampleRatioResult: Equatable, Sendable {
    /// Pearson's Σ (observed - expected)² / expected; +inf when a weight-0 variant has units.
    public let statistic: Double
    /// Variants in the test minus one.
    public let degreesOfFreedom: Int
    /// P(χ² >= statistic); 0 when a weight-0 variant has units.
    public let pValue: Double
    /// All units counted.
    public let total: Int
    /// Per variant, in input order: the normalised weight and the units it should have had.
    public let expectedShares: [Double]
    public let expectedCounts: [Double]

    /// `SampleRatio.isMismatch` on this result.
    public func isMismatch(threshold: Double = SampleRatio.defaultThreshold,
                           minimumUnits: Int = SampleRatio.defaultMinimumUnits) -> Bool {
        SampleRatio.isMismatch(pValue: pValue, units: total, threshold: threshold, minimumUnits: minimumUnits)
    }
}

public enum SampleRatio {
    /// A p-value this small is a mismatch: strict, because the check runs on every look at
    /// every experiment, and a false alarm stops a healthy experiment.
    public static let defaultThreshold = 0.001
    /// Below this many units the chi-square approximation is poor and a warning is noise.
    public static let defaultMinimumUnits = 100

    /// Chi-square goodness of fit of `observed` units against `weights` (normalised to shares).
    ///
    /// A variant with weight 0 and no units takes no part. A variant with weight 0 and units is
    /// a mismatch outright (p = 0): nobody should have been assigned to it. nil when the arrays
    /// differ in length, a count is negative, a weight is negative or not finite, the total
    /// overflows, or fewer than two variants have a positive weight.
    public static func check(observed: [Int], weights: [Double]) -> SampleRatioResult? {
        guard observed.count == weights.count,
              observed.allSatisfy({ $0 >= 0 }),
              weights.allSatisfy({ $0.isFinite && $0 >= 0 }) else { return nil }
        var total = 0
        for count in observed {
            let (sum, overflow) = total.addingReportingOverflow(count)
            if overflow { return nil }
            total = sum
        }
        let weightSum = weights.reduce(0, +)
        let inTest = weights.filter { $0 > 0 }.count
        guard inTest >= 2, weightSum.isFinite else { return nil }
        let shares = weights.map { $0 / weightSum }
        let expected = shares.map { $0 * Double(total) }
        let degrees = inTest - 1
        let unitsWhereNoneBelong = zip(observed, weights).contains { $0.0 > 0 && $0.1 == 0 }
        if unitsWhereNoneBelong {
            return SampleRatioResult(statistic: .infinity, degreesOfFreedom: degrees, pValue: 0, total: total,
                                     expectedShares: shares, expectedCounts: expected)
        }
        var statistic = 0.0
        for (o, e) in zip(observed, expected) where e > 0 {
            let gap = Double(o) - e
            statistic += gap * gap / e
        }
        let pValue = total == 0 ? 1 : Statistics.chiSquareSurvival(statistic, degreesOfFreedom: degrees)
        return SampleRatioResult(statistic: statistic, degreesOfFreedom: degrees, pValue: pValue, total: total,
                                 expectedShares: shares, expectedCounts: expected)
    }

    /// The warning rule: enough units to trust the approximation, and a p-value below the
    /// threshold. A NaN p-value is no warning.
    public static func isMismatch(pValue: Double, units: Int, threshold: Double = defaultThreshold,
                                  minimumUnits: Int = defaultMinimumUnits) -> Bool {
        units >= minimumUnits && pValue < threshold
    }
}
