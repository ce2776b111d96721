// A rollout over a blue/green upstream: the release is a flip of its live color, watched for a
// bake with the rollout's gates and reverted by itself when they fail (the guard of
// `flip --bake` does the watching), so "flip, bake, revert if bad" is one declared release. With
// a `shadow` stage the idle color first gets compared copies, and the flip waits for it to pass
// ("shadow → flip → bake → revert if bad"); a shadow that fails ends the release unflipped.
//
//   "rollout": { "shadow": { "minCompared": 1000 }, "flip": { "bakeSeconds": 600 },
//                "gates": { "maxErrorRate": 0.01, "maxP99Ratio": 1.5, "minRequests": 100 } }

public struct RolloutFlipPlan: Sendable, Equatable, Codable {
    public var upstream: String
    public var bakeSeconds: Int

    public init(upstream: String, bakeSeconds: Int) {
        self.upstream = upstream
        self.bakeSeconds = bakeSeconds
    }
}

/// How the bake of a flip ended, as the runner read it from its guard.
public struct FlipOutcome: Sendable, Equatable {
    public var passed: Bool
    public var detail: String

    public init(passed: Bool, detail: String) {
        self.passed = passed
        self.detail = detail
    }
}

extension RolloutStatus {
    /// A flip release: flips (the runner commits it, guarded), then waits for the bake. After
    /// steps, the same commit gives the baseline back every request: it is served by the new
    /// live color.
    mutating func tickFlip(_ flip: RolloutFlipPlan, at now: Double, outcome: FlipOutcome?, effects: inout RolloutEffects) {
        if state != .baking {
            state = .baking
            step = plan.steps.count - 1
            stepStartedAt = now
            reason = "baking \(flip.bakeSeconds) s after the flip"
            effects.flip = true
            record("flip", "flip \(flip.upstream), baked for \(flip.bakeSeconds) s on the gates", at: now, into: &effects)
            return
        }
        guard let outcome else { return }
        if outcome.passed {
            finish(.promoted, weight: 100, kind: "promote", reason: "the flip baked: \(outcome.detail)", at: now, effects: &effects)
        } else {
            finish(.rolledBack, weight: 0, kind: "rollback", reason: "flipped back: \(outcome.detail)", at: now, effects: &effects)
        }
        // The flip's guard set the colors; the weights stay as the flip left them (the baseline,
        // on the live color, at 100).
        effects.weight = nil
    }
}

extension ConfigParser {
    /// `rollout.flip` on a route whose target is an upstream (blue/green, checked when the
    /// snapshot is built).
    func rolloutFlip(_ value: ConfigValue, upstream: String) -> RolloutFlipPlan? {
        guard let object = value.object(keys: ["bakeSeconds"]) else { return nil }
        return RolloutFlipPlan(upstream: upstream, bakeSeconds: object.int("bakeSeconds", default: 300, 1...86_400))
    }
}
