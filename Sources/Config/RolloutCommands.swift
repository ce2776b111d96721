// What an operator (or the runner, on invalid readings) does to a rollout besides its ticks:
// approve the next step, pause, resume, promote, abort; and how a restart takes it over.

extension RolloutStatus {
    /// `rollout approve`, once the step's time is up and it waits: the next step may begin (its
    /// gates are judged first, on the next tick).
    public mutating func approve(now: Double) -> RolloutEffects? {
        var effects = RolloutEffects()
        guard state == .waiting, plan.approvals?.contains(step + 1) == true, approved != true else { return nil }
        approved = true
        record("approve", "step \(step + 2) approved", at: now, into: &effects)
        return effects
    }

    /// `why`: what paused it when the operator did not (invalid gate readings). A flip that
    /// bakes is not paused: its guard judges it, and a resume would not know it had flipped.
    public mutating func pause(now: Double, why: String? = nil) -> RolloutEffects {
        var effects = RolloutEffects()
        guard !state.isFinished, state != .paused, state != .baking else { return effects }
        state = .paused
        reason = why ?? "paused by the operator"
        record("pause", "paused at step \(step + 1), \(plan.variant) at \(weight)%" + (why.map { ": " + $0 } ?? ""), at: now, into: &effects)
        return effects
    }

    /// The step's clock and counters start again: a paused step is judged on what follows.
    public mutating func resume(now: Double, reading: RolloutReading) -> RolloutEffects {
        var effects = RolloutEffects()
        guard state == .paused else { return effects }
        state = step < 0 ? .waiting : .running
        reason = nil
        stepStartedAt = now
        mark = reading
        record("resume", "resumed at step \(step + 1)", at: now, into: &effects)
        return effects
    }

    public mutating func promote(now: Double) -> RolloutEffects {
        var effects = RolloutEffects()
        guard !state.isFinished else { return effects }
        stopShadowCopies(&effects)
        if let flip = plan.flip, state != .baking {
            // A blue/green release is promoted by its flip (then baked like any).
            record("promote_requested", "promoted by the operator: flipping now, then baking", at: now, into: &effects)
            tickFlip(flip, at: now, outcome: nil, effects: &effects)
            return effects
        }
        endBake(&effects) { $0.finish(.promoted, weight: 100, kind: "promote", reason: "promoted by the operator", at: now, effects: &$1) }
        return effects
    }

    public mutating func abort(now: Double) -> RolloutEffects {
        var effects = RolloutEffects()
        guard !state.isFinished else { return effects }
        stopShadowCopies(&effects)
        endBake(&effects) { $0.finish(.aborted, weight: 0, kind: "abort", reason: "aborted by the operator", at: now, effects: &$1) }
        return effects
    }

    /// Ends the rollout with `finishing`; after a flip the colors are its guard's and the weights
    /// stay as the flip left them (a weight now would move users to the old color).
    private mutating func endBake(_ effects: inout RolloutEffects, _ finishing: (inout RolloutStatus, inout RolloutEffects) -> Void) {
        let baking = state == .baking
        finishing(&self, &effects)
        if baking { effects.weight = nil }
    }

    /// Ending the shadow stage early ends its copies too (in the same commit as the weight).
    private func stopShadowCopies(_ effects: inout RolloutEffects) {
        guard state == .shadowing, let shadow = plan.shadow else { return }
        effects.mirror = RolloutMirrorEffect(upstream: shadow.upstream, percent: 0)
    }

    /// After a restart or reload: the step goes on at the weight it reached, its clock and
    /// counters start again (the process's counters began at zero).
    public mutating func resumeAfterRestart(now: Double, reading: RolloutReading) {
        stepStartedAt = now
        mark = reading
    }
}
