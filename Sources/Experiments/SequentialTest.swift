// The always-valid test of two conversion rates (mSPRT; Johari, Pekelis, Walsh, "Always Valid
// Inference", the test behind Optimizely's Stats Engine): its p-value and interval may be read
// after every new unit, and the experiment stopped at any look, without inflating false positives.
import Foundation

public enum SequentialTest {
    /// The mixing distribution's standard deviation, on the scale of the absolute difference of
    /// rates. The mixture likelihood ratio grows fastest for an effect θ when τ² = θ² - V, so τ is
    /// the effect the test is tuned to find soonest: 2 percentage points is the size of effect a
    /// web conversion experiment usually hopes for. A wrong τ costs only a logarithmic factor in
    /// the units needed, never validity.
    public static let defaultTau = 0.02

    /// Λ_n = sqrt(V / (V + τ²)) · exp(θ̂² τ² / (2 V (V + τ²))) for the normal approximation of
    /// θ̂ = p2 - p1 with V = p1(1-p1)/n1 + p2(1-p2)/n2, and a N(0, τ²) mixture over the true
    /// difference. Returns log Λ_n, which cannot overflow; nil when the counts are not
    /// proportions or V = 0 (nobody or everybody converted in both arms: no evidence yet).
    public static func logMixtureLikelihoodRatio(control: Counts, treatment: Counts, tau: Double = defaultTau) -> Double? {
        guard let (theta, v) = estimate(control: control, treatment: treatment), tau > 0, tau.isFinite else { return nil }
        let t2 = tau * tau
        return 0.5 * log(v / (v + t2)) + theta * theta * t2 / (2 * v * (v + t2))
    }

    /// Λ_n itself (+inf when it overflows); nil as for `logMixtureLikelihoodRatio`.
    public static func mixtureLikelihoodRatio(control: Counts, treatment: Counts, tau: Double = defaultTau) -> Double? {
        logMixtureLikelihoodRatio(control: control, treatment: treatment, tau: tau).map { exp($0) }
    }

    /// The p-value of one look, min(1, 1/Λ_n), before the running minimum; 1 when there is no
    /// evidence (nil Λ).
    public static func pValueOfLook(control: Counts, treatment: Counts, tau: Double = defaultTau) -> Double {
        guard let logLambda = logMixtureLikelihoodRatio(control: control, treatment: treatment, tau: tau) else { return 1 }
        return min(1, exp(-logLambda))
    }

    /// The always-valid (1 - α) interval of p2 - p1 at this look: the differences θ0 that the
    /// mSPRT would not reject, {θ0 : Λ_n(θ0) < 1/α}, with Λ_n(θ0) the ratio above for θ̂ - θ0.
    /// Taking logs, ½ log(V/(V+τ²)) + (θ̂-θ0)² τ² / (2V(V+τ²)) < -log α, so
    ///     θ̂ ± sqrt( V (V + τ²) / τ² · ( log((V + τ²) / V) - 2 log α ) ).
    /// It is wider than the fixed-horizon interval, the price of reading it at any time. Callers
    /// that keep looking may intersect successive intervals. nil when V = 0 or inputs are invalid.
    public static func interval(control: Counts, treatment: Counts, alpha: Double = 0.05,
                                tau: Double = defaultTau) -> ClosedRange<Double>? {
        guard let (theta, v) = estimate(control: control, treatment: treatment),
              tau > 0, tau.isFinite, alpha > 0, alpha < 1 else { return nil }
        let t2 = tau * tau
        let half = (v * (v + t2) / t2 * (log((v + t2) / v) - 2 * log(alpha))).squareRoot()
        guard half.isFinite else { return nil }
        return (theta - half)...(theta + half)
    }

    /// θ̂ = p2 - p1 and its variance V, when V > 0.
    static func estimate(control: Counts, treatment: Counts) -> (theta: Double, variance: Double)? {
        guard let c = control.rateAndVariance, let t = treatment.rateAndVariance else { return nil }
        let v = c.variance + t.variance
        guard v > 0, v.isFinite else { return nil }
        return (t.rate - c.rate, v)
    }
}

/// The always-valid p-value across looks: p_n = min(p_{n-1}, 1/Λ_n), starting at 1. It only
/// falls, so a verdict once reached stays reached; it is valid only if every look goes through
/// `update` on the same experiment's cumulative counts.
public struct AlwaysValidPValue: Equatable, Sendable {
    public private(set) var value: Double = 1
    public let tau: Double

    public init(tau: Double = SequentialTest.defaultTau) {
        self.tau = tau
    }

    /// Records a look at the cumulative counts and returns the running p-value.
    @discardableResult
    public mutating func update(control: Counts, treatment: Counts) -> Double {
        value = min(value, SequentialTest.pValueOfLook(control: control, treatment: treatment, tau: tau))
        return value
    }
}
