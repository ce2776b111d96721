// Judging a step before its end. The error gates are read on every tick once the step has
// `minRequests`, and fail early only on overwhelming evidence: the lower end of the variant's
// 99.9% Wilson interval above the limit (for `maxErrorRateRatio`, above the limit times the upper
// end of the baseline's). A canary answering every request with a 5xx fails after a handful of
// requests; one unlucky error among few requests, or a rate near the limit, waits for the
// step's end, where the gates compare the rates themselves as before. Looking at every tick
// repeats the test; at 99.9% and with rates far from the limit the repeated looks cost little,
// and near the limit nothing is decided early. Latency (`maxP99Ratio`) is judged at the end
// only: the histogram's buckets are too coarse for an interval. A dry-run gate never fails
// early; it is logged at the step's end like the others.
import Experiments

extension RolloutStatus {
    /// The confidence of the intervals an early failure needs.
    static let earlyConfidence = 0.999

    /// The first error gate that fails with overwhelming evidence on the step so far, or nil.
    static func earlyFailure(_ gates: RolloutGates, _ d: RolloutReading) -> GateReading? {
        let n = d.variant.requests
        guard n > 0, n >= UInt64(clamping: gates.minRequests),
              let variant = Proportion.wilson(conversions: Int(clamping: d.variant.errors), units: Int(clamping: n),
                                              confidence: earlyConfidence) else { return nil }
        if let limit = gates.maxErrorRate, !gates.isDryRun("maxErrorRate"), variant.lower > limit {
            return GateReading(gate: "maxErrorRate", measured: d.variant.errorRate, limit: limit, passed: false,
                               note: " (\(d.variant.errors)/\(n) 5xx; 99.9% interval from \(GateReading.number(variant.lower)))")
        }
        if let limit = gates.maxErrorRateRatio, !gates.isDryRun("maxErrorRateRatio"), d.baseline.requests > 0,
           let base = Proportion.wilson(conversions: Int(clamping: d.baseline.errors), units: Int(clamping: d.baseline.requests),
                                        confidence: earlyConfidence),
           variant.lower > limit * base.upper {
            let rate = d.variant.errorRate, baseRate = d.baseline.errorRate
            return GateReading(gate: "maxErrorRateRatio", measured: baseRate > 0 ? rate / baseRate : .infinity, limit: limit,
                               passed: false,
                               note: " (variant \(GateReading.number(rate)) from \(GateReading.number(variant.lower)), "
                                   + "baseline \(GateReading.number(baseRate)) up to \(GateReading.number(base.upper)), 99.9% intervals)")
        }
        return nil
    }
}
