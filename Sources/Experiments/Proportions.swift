// Conversion rates and their intervals, and the standard normal distribution the tests use.
import Foundation

/// A conversion rate with its confidence interval.
public struct RateEstimate: Equatable, Sendable {
    public let conversions: Int
    public let units: Int
    /// conversions / units.
    public let rate: Double
    public let lower: Double
    public let upper: Double
}

public enum Proportion {
    /// The rate `conversions / units` with its Wilson score interval (95% by default).
    ///
    /// Wilson, not Wald (p ± z·sqrt(p(1-p)/n)): the Wald interval collapses to a single point
    /// at 0 or n conversions, can reach below 0 or above 1, and covers the true rate far less
    /// often than claimed for small n or rates near 0 and 1, which is where a young experiment
    /// or a rare goal lives. Wilson inverts the score test, so it stays inside [0, 1] and keeps
    /// close to its nominal coverage there.
    ///
    /// nil when `units <= 0`, `conversions` is outside `0...units`, or `confidence` is not in (0, 1).
    public static func wilson(conversions: Int, units: Int, confidence: Double = 0.95) -> RateEstimate? {
        guard units > 0, conversions >= 0, conversions <= units, confidence > 0, confidence < 1 else { return nil }
        let n = Double(units)
        let p = Double(conversions) / n
        let z = normalQuantile(0.5 + confidence / 2)
        let z2 = z * z
        let scale = 1 + z2 / n
        let center = (p + z2 / (2 * n)) / scale
        let half = z / scale * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        // At 0 or n conversions the bound is exactly 0 or 1; rounding must not move it off.
        let lower = conversions == 0 ? 0 : max(0, center - half)
        let upper = conversions == units ? 1 : min(1, center + half)
        return RateEstimate(conversions: conversions, units: units, rate: p, lower: lower, upper: upper)
    }

    /// Φ(x), the standard normal CDF.
    public static func normalCDF(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.0.squareRoot())
    }

    /// 1 - Φ(x), computed directly so that far tails keep their relative accuracy.
    public static func normalSurvival(_ x: Double) -> Double {
        0.5 * erfc(x / 2.0.squareRoot())
    }

    /// Φ⁻¹(p): Acklam's rational approximation (relative error 1.15e-9) polished by one Halley
    /// step against erfc, which brings it to about machine precision. 0 → -inf, 1 → +inf,
    /// outside [0, 1] or NaN → NaN.
    public static func normalQuantile(_ p: Double) -> Double {
        guard p >= 0, p <= 1 else { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        let x = acklam(p)
        // Halley: e = Φ(x) - p, u = e·sqrt(2π)·exp(x²/2), x ← x - u / (1 + x·u/2).
        // In the upper tail Φ(x) - p loses digits; use the survival form there.
        let e = p > 0.5 ? (1 - p) - normalSurvival(x) : normalCDF(x) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        let refined = x - u / (1 + x * u / 2)
        return refined.isFinite ? refined : x
    }

    private static func acklam(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                 3.754408661907416e+00]
        let low = 0.02425
        if p < low || p > 1 - low {
            let q = (-2 * log(p < low ? p : 1 - p)).squareRoot()
            let x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
            return p < low ? x : -x
        }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}

/// One arm's counts: units exposed and units converted.
public struct Counts: Equatable, Sendable {
    public var conversions: Int
    public var units: Int
    public init(conversions: Int, units: Int) {
        self.conversions = conversions
        self.units = units
    }

    /// The rate and its sampling variance p(1-p)/n, or nil when the counts are not a proportion.
    var rateAndVariance: (rate: Double, variance: Double)? {
        guard units > 0, conversions >= 0, conversions <= units else { return nil }
        let n = Double(units)
        let p = Double(conversions) / n
        return (p, p * (1 - p) / n)
    }
}
