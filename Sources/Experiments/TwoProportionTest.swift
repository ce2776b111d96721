// The fixed-horizon comparison of two conversion rates: the pooled two-sided z-test. Valid when
// it is read once, at a sample size fixed in advance; for peeking, see SequentialTest.
import Foundation

public struct TwoProportionResult: Equatable, Sendable {
    /// (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)), p the pooled rate.
    public let z: Double
    /// Two-sided: 2·P(Z >= |z|).
    public let pValue: Double
    /// Treatment rate minus control rate.
    public let difference: Double
    /// The unpooled (Wald) interval of the difference at the confidence asked for.
    public let lower: Double
    public let upper: Double
}

public enum TwoProportionTest {
    /// The pooled two-sided z-test of `treatment` against `control`.
    ///
    /// nil when either arm has no units or conversions outside `0...units`. When nobody or
    /// everybody converted in both arms the pooled variance is 0: z = 0 and p = 1 (no evidence).
    public static func zTest(control: Counts, treatment: Counts, confidence: Double = 0.95) -> TwoProportionResult? {
        guard let c = control.rateAndVariance, let t = treatment.rateAndVariance,
              confidence > 0, confidence < 1 else { return nil }
        let n1 = Double(control.units), n2 = Double(treatment.units)
        let pooled = (Double(control.conversions) + Double(treatment.conversions)) / (n1 + n2)
        let pooledSE = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
        let difference = t.rate - c.rate
        let z = pooledSE > 0 ? difference / pooledSE : 0
        let pValue = min(1, 2 * Proportion.normalSurvival(abs(z)))
        let half = Proportion.normalQuantile(0.5 + confidence / 2) * (c.variance + t.variance).squareRoot()
        return TwoProportionResult(z: z, pValue: pValue, difference: difference,
                                   lower: difference - half, upper: difference + half)
    }
}
