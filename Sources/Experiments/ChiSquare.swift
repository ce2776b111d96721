// The chi-square upper tail, through the regularized upper incomplete gamma function Q(a, x):
// the p-value of the sample-ratio check. Written here (series and Lentz continued fraction, as in
// Numerical Recipes) because Foundation has lgamma and erfc but no incomplete gamma.
import Foundation

public enum Statistics {
    /// P(X >= x) for X chi-square with `k` degrees of freedom, that is Q(k/2, x/2).
    ///
    /// Relative accuracy about 1e-12 while the result is a normal Double (down to ~1e-300);
    /// it is 0 only once the true value underflows. `x <= 0` gives 1, `x = +inf` gives 0;
    /// a NaN `x` or `k < 1` gives NaN (no verdict), never a trap.
    public static func chiSquareSurvival(_ x: Double, degreesOfFreedom k: Int) -> Double {
        guard k >= 1, !x.isNaN else { return .nan }
        return regularizedUpperGamma(Double(k) / 2, x / 2)
    }

    /// Q(a, x) = Γ(a, x) / Γ(a), for a > 0. NaN for a NaN or non-positive `a` or a NaN `x`.
    public static func regularizedUpperGamma(_ a: Double, _ x: Double) -> Double {
        guard a > 0, a.isFinite, !x.isNaN else { return .nan }
        if x <= 0 { return 1 }
        if x == .infinity { return 0 }
        // The series converges fast below a + 1 and gives P; the continued fraction converges
        // fast above it and gives Q directly, so a tiny Q is never 1 minus something close to 1.
        if x < a + 1 { return max(0, 1 - lowerSeries(a, x)) }
        return upperContinuedFraction(a, x)
    }

    /// e^{-x} x^a / Γ(a), in logs so that large x and a neither overflow nor underflow early.
    private static func logPrefactor(_ a: Double, _ x: Double) -> Double {
        -x + a * log(x) - lgamma(a)
    }

    private static let epsilon = 1e-16
    private static let maxIterations = 10_000

    /// P(a, x) by the series e^{-x} x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)).
    private static func lowerSeries(_ a: Double, _ x: Double) -> Double {
        var term = 1 / a
        var sum = term
        var denominator = a
        for _ in 0..<maxIterations {
            denominator += 1
            term *= x / denominator
            sum += term
            if abs(term) < abs(sum) * epsilon { break }
        }
        return sum * exp(logPrefactor(a, x))
    }

    /// Q(a, x) by the continued fraction 1/(x+1-a- 1·(1-a)/(x+3-a- 2·(2-a)/(x+5-a- …))),
    /// evaluated with the modified Lentz method.
    private static func upperContinuedFraction(_ a: Double, _ x: Double) -> Double {
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1...maxIterations {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < epsilon { break }
        }
        return exp(logPrefactor(a, x)) * h
    }
}
