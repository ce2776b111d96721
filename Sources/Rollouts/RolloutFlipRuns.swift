// A blue/green release in the runner: its flip is committed through the guard board, guarded by
// the rollout's gates for the bake (the guard reverts it by itself), and the rollout ends with
// the guard's outcome.
import Config
import Foundation
import Runtime

extension RolloutRunner {
    /// Flips the plan's upstream to its idle color, guarded; the guard's id goes in the status.
    func flip(_ route: String, _ status: inout RolloutStatus) {
        guard let plan = status.plan.flip, let guards,
              let live = state.config[upstream: plan.upstream]?.blueGreen?.live else { return }
        var options = GuardOptions(bakeSeconds: Double(plan.bakeSeconds))
        // A dry-run gate is tried, never acted on: the guard, which acts, does not get it.
        let gates = status.plan.gates
        options.maxErrorRate = gates.isDryRun("maxErrorRate") ? nil : gates.maxErrorRate
        options.maxP99Ratio = gates.isDryRun("maxP99Ratio") ? nil : gates.maxP99Ratio
        options.minRequests = UInt64(max(1, status.plan.gates.minRequests))
        // After a canary of the idle color, the baseline gets every request back in the flip's
        // commit: the new live color serves it, so no user moves. Only the flip is guarded: a
        // revert puts the old color back under the baseline.
        let weights: [RuntimeChange] = status.plan.flipsAfterSteps ? [.weights(route: route, weights: [
            .init(variant: status.plan.variant, weight: 0), .init(variant: status.plan.baseline, weight: 100),
        ])] : []
        do throws(ControlError) {
            let (result, guardValue) = try guards.commit([.live(upstream: plan.upstream, color: live.other)], guarded: options,
                                                         alongside: weights)
            status.flipGuard = guardValue?["id"]?.int
            state.log("rollout \(route): flip \(plan.upstream) to \(live.other.name): version \(result.version), "
                      + "baking \(plan.bakeSeconds) s (guard \(status.flipGuard.map(String.init) ?? "none"))")
        } catch {
            abortRollout(route, &status, because: "cannot flip \(plan.upstream): \(error.message)")
            return
        }
        state.overrides.rollouts[route] = status
        if let failure = state.persist() { state.log("cannot save the runtime state: \(failure)") }
    }

    /// How the flip's bake ended, once it has; nil while it bakes (a restart bakes on: guards
    /// are saved with the state). A guard that is gone (unreadable in the state file) leaves
    /// the flip as it is.
    func flipOutcome(_ status: RolloutStatus) -> FlipOutcome? {
        guard status.plan.flip != nil, status.state == .baking, let guards else { return nil }
        guard let id = status.flipGuard, let record = guards.records.first(where: { $0.id == id }) else {
            return FlipOutcome(passed: true, detail: "its guard is gone from the saved state; the flip stays")
        }
        switch record.outcome {
        case .baking: return nil
        case .passed: return FlipOutcome(passed: true, detail: "guard \(id) passed")
        default: return FlipOutcome(passed: false, detail: "guard \(id) \(record.outcome.rawValue): \(record.reason ?? "")")
        }
    }
}
