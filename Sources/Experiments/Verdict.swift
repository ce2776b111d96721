// The verdict of one goal: every variant against the control, in numbers and in one sentence.
import Foundation

public struct Verdict: Sendable {
    /// One variant's numbers; the comparisons are nil for the control and when counts are invalid.
    public struct Arm: Sendable {
        public let name: String
        public let counts: Counts
        /// Rate with its 95% Wilson interval; nil with no units.
        public let rate: RateEstimate?
        /// Fixed-horizon z-test against the control (difference = this rate - control's).
        public let zTest: TwoProportionResult?
        /// The running always-valid p-value after this look; keep it and pass it to the next.
        public let alwaysValid: AlwaysValidPValue
        /// The always-valid (1 - alpha) interval of the difference at this look.
        public let alwaysValidInterval: ClosedRange<Double>?
    }

    public let control: String
    public let alpha: Double
    public let arms: [Arm]
    /// The treatment that converts better than the control, or the control when it converts
    /// better than every treatment; nil until the always-valid test says so.
    public let winner: String?
    public let summary: String

    /// `variants` in config order, `control` naming one of them; `previous` carries each
    /// treatment's running always-valid p-value from the last look (empty at the first).
    ///
    /// With several treatments each is tested at alpha / (number of treatments) (Bonferroni),
    /// so the chance of any false winner stays below alpha. nil when `control` is not a variant
    /// or alpha is not in (0, 1).
    public init?(variants: [(name: String, counts: Counts)], control: String, alpha: Double = 0.05,
                 previous: [String: AlwaysValidPValue] = [:], tau: Double = SequentialTest.defaultTau) {
        guard alpha > 0, alpha < 1, let base = variants.first(where: { $0.name == control }) else { return nil }
        let treatments = variants.filter { $0.name != control }
        let level = alpha / Double(max(1, treatments.count))
        self.control = control
        self.alpha = alpha
        arms = variants.map { variant in
            let isControl = variant.name == control
            var running = previous[variant.name] ?? AlwaysValidPValue(tau: tau)
            if !isControl { running.update(control: base.counts, treatment: variant.counts) }
            return Arm(name: variant.name, counts: variant.counts,
                       rate: Proportion.wilson(conversions: variant.counts.conversions, units: variant.counts.units),
                       zTest: isControl ? nil : TwoProportionTest.zTest(control: base.counts, treatment: variant.counts),
                       alwaysValid: running,
                       alwaysValidInterval: isControl ? nil
                           : SequentialTest.interval(control: base.counts, treatment: variant.counts, alpha: level, tau: running.tau))
        }
        let controlArm = arms.first { $0.name == control }!
        let contenders = arms.filter { $0.name != control }
        let significant = contenders.filter { $0.alwaysValid.value < level && $0.zTest != nil }
        let better = significant.filter { $0.zTest!.difference > 0 }
        let best = better.max { $0.zTest!.difference < $1.zTest!.difference }
        let controlWins = !contenders.isEmpty && significant.count == contenders.count && better.isEmpty
        if let best {
            winner = best.name
            summary = "\(best.name) converts better than \(control): \(Self.percent(best)) vs \(Self.percent(controlArm)), "
                + "always-valid p = \(Self.format(best.alwaysValid.value))"
        } else if controlWins {
            winner = control
            let worst = contenders.max { $0.alwaysValid.value < $1.alwaysValid.value }!
            summary = "\(control) converts better than " + contenders.map(\.name).joined(separator: ", ")
                + ": \(Self.percent(controlArm)) vs \(Self.percent(worst)) for \(worst.name), "
                + "always-valid p = \(Self.format(worst.alwaysValid.value))"
        } else {
            winner = nil
            summary = Self.noWinner(control: controlArm, contenders: contenders, alpha: level)
        }
    }

    private static func noWinner(control: Arm, contenders: [Arm], alpha: Double) -> String {
        if let empty = ([control] + contenders).first(where: { $0.rate == nil }) {
            return "No winner yet: \(empty.name) has no valid units"
        }
        guard let closest = contenders.min(by: { $0.alwaysValid.value < $1.alwaysValid.value }) else {
            return "No winner: \(control.name) has nothing to be compared with"
        }
        return "No winner yet: \(closest.name) \(percent(closest)) vs \(control.name) \(percent(control)), "
            + "always-valid p = \(format(closest.alwaysValid.value)) (needs < \(format(alpha))); need more units"
    }

    private static func percent(_ arm: Arm) -> String {
        String(format: "%.1f%%", (arm.rate?.rate ?? 0) * 100)
    }

    private static func format(_ p: Double) -> String {
        String(format: "%.2g", p)
    }
}
