// A rollout's shadow stage: before any user reaches the new version, it gets mirrored copies of
// the route's requests, compared with the primary's answers (for a blue/green release, copies to
// the idle color, the next version). The first step, or the flip, starts only once
// `minCompared` comparisons match at `minMatchRate` (and, with `maxP99Ratio`, the shadow's p99
// stays within that multiple of the primary's); a shadow that answers differently ends the
// rollout before any user saw it, with its last mismatches in the reason.
import Foundation

/// `rollout.shadow` in the config.
public struct RolloutShadowPlan: Sendable, Equatable, Codable {
    /// The upstream that receives the copies; the rollout's variant's by default.
    public var upstream: String
    public var percent: Double
    public var minCompared: Int
    public var minMatchRate: Double
    public var maxP99Ratio: Double?
    public var maxSeconds: Int
    /// Compare body hashes too (statuses and latency always).
    public var bodyHash: Bool
    /// Methods copied (uppercase); the mirror's default, the safe ones, so that a shadow never
    /// repeats a write.
    public var methods: [String]

    public static let defaultMethods = ["GET", "HEAD", "OPTIONS"]

    public init(upstream: String, percent: Double = 100, minCompared: Int = 1000, minMatchRate: Double = 0.995,
                maxP99Ratio: Double? = nil, maxSeconds: Int = 1800, bodyHash: Bool = false,
                methods: [String] = RolloutShadowPlan.defaultMethods) {
        self.upstream = upstream
        self.percent = percent
        self.minCompared = minCompared
        self.minMatchRate = minMatchRate
        self.maxP99Ratio = maxP99Ratio
        self.maxSeconds = maxSeconds
        self.bodyHash = bodyHash
        self.methods = methods
    }

    /// Why a plan read from the state file cannot run, or nil.
    func problem() -> String? {
        if !(percent > 0 && percent <= 100) { return "shadow.percent \(percent) is not in (0, 100]" }
        if !(1...1_000_000_000).contains(minCompared) { return "shadow.minCompared \(minCompared) is out of range" }
        if !(0...1).contains(minMatchRate) { return "shadow.minMatchRate \(minMatchRate) is not a share" }
        if let x = maxP99Ratio, !(x > 0 && x.isFinite) { return "shadow.maxP99Ratio \(x) is not a finite number above 0" }
        if !(1...RolloutPlan.maxStepSecondsLimit).contains(maxSeconds) { return "shadow.maxSeconds \(maxSeconds) is out of range" }
        return nil
    }
}

/// The shadow's comparisons so far (cumulative, as the proxy counts them).
public struct ShadowReading: Sendable, Equatable, Codable {
    public var compared: UInt64
    public var matched: UInt64
    /// Latency of compared requests, the shadow's and the primary's, as bucket counts.
    public var shadow: VariantCounts
    public var primary: VariantCounts
    /// The last mismatches in words (not subtracted; shown in a failure's reason).
    public var mismatches: [String]

    public init(compared: UInt64 = 0, matched: UInt64 = 0, shadow: VariantCounts = VariantCounts(),
                primary: VariantCounts = VariantCounts(), mismatches: [String] = []) {
        self.compared = compared
        self.matched = matched
        self.shadow = shadow
        self.primary = primary
        self.mismatches = mismatches
    }

    func since(_ earlier: ShadowReading) -> ShadowReading {
        ShadowReading(compared: compared >= earlier.compared ? compared - earlier.compared : compared,
                      matched: matched >= earlier.matched ? matched - earlier.matched : matched,
                      shadow: shadow.since(earlier.shadow), primary: primary.since(earlier.primary), mismatches: mismatches)
    }
}

/// A mirror the runner must set (percent 0 removes it).
public struct RolloutMirrorEffect: Sendable, Equatable {
    public var upstream: String
    public var percent: Double
}

extension RolloutStatus {
    /// Starts the shadow stage: copies on, the variant at 0% (no user reaches it yet).
    mutating func enterShadow(_ shadow: RolloutShadowPlan, at now: Double, reading: ShadowReading?,
                              effects: inout RolloutEffects) {
        state = .shadowing
        reason = nil
        stepStartedAt = now
        shadowMark = reading ?? ShadowReading()
        weight = 0
        effects.weight = 0
        effects.mirror = RolloutMirrorEffect(upstream: shadow.upstream, percent: shadow.percent)
        let target = plan.flip?.upstream == shadow.upstream ? "the idle color of \(shadow.upstream)" : shadow.upstream
        record("shadow", "shadow stage: \(GateReading.number(shadow.percent))% of requests copied to \(target) and compared, "
               + "\(shadow.minCompared) comparisons at \(GateReading.number(shadow.minMatchRate * 100))% matching needed",
               at: now, into: &effects)
    }

    /// Judges the shadow stage: passes into the first step, fails the rollout, or waits.
    mutating func judgeShadow(_ shadow: RolloutShadowPlan, at now: Double, reading: RolloutReading, shadowReading: ShadowReading?,
                              effects: inout RolloutEffects) {
        let d = (shadowReading ?? ShadowReading()).since(shadowMark ?? ShadowReading())
        let off = RolloutMirrorEffect(upstream: shadow.upstream, percent: 0)
        if d.compared >= UInt64(shadow.minCompared) {
            let rate = Double(d.matched) / Double(d.compared)
            var failure: String?
            if rate < shadow.minMatchRate {
                failure = "match rate \(GateReading.number(rate)) < \(GateReading.number(shadow.minMatchRate)) over \(d.compared) comparisons"
                    + (d.mismatches.isEmpty ? "" : "; last mismatches: " + d.mismatches.suffix(3).joined(separator: "; "))
            } else if let limit = shadow.maxP99Ratio,
                      let s = d.shadow.quantile(0.99, bounds: RolloutLatency.boundsSeconds),
                      let p = d.primary.quantile(0.99, bounds: RolloutLatency.boundsSeconds), p > 0, s / p > limit {
                failure = "p99 \(GateReading.number(s))s is \(GateReading.number(s / p))x the primary's \(GateReading.number(p))s > \(GateReading.number(limit))x"
            }
            effects.mirror = off
            if let failure {
                let spared = plan.flip == nil || plan.flipsAfterSteps ? plan.variant : "the idle color of \(plan.variant) (not flipped)"
                finish(.rolledBack, weight: 0, kind: "rollback", reason: "shadow: \(failure); no user request reached \(spared)",
                       at: now, effects: &effects)
                return
            }
            record("shadow_passed", "shadow passed: \(d.matched)/\(d.compared) matched (\(GateReading.number(rate * 100))%)",
                   at: now, into: &effects)
            shadowMark = nil
            // Then the first canary step, or for a blue/green release the flip and its bake.
            if let flip = plan.flip, !plan.flipsAfterSteps {
                tickFlip(flip, at: now, outcome: nil, effects: &effects)
            } else {
                enter(0, at: now, reading: reading, effects: &effects)
            }
            return
        }
        if now - stepStartedAt >= Double(shadow.maxSeconds) {
            effects.mirror = off
            finish(.rolledBack, weight: 0, kind: "rollback",
                   reason: "shadow: \(d.compared) of \(shadow.minCompared) comparisons within maxSeconds \(shadow.maxSeconds)",
                   at: now, effects: &effects)
            return
        }
        let progress = "shadow: \(d.compared) of \(shadow.minCompared) comparisons, \(d.matched) matched"
        if reason != progress {
            reason = progress
            effects.changed = true
        }
    }
}
