// What changes a running proxy besides its operators: the rollout runner and the guard board of
// one runtime state, created together and registered with it. The state does not know them; the
// control socket and /metrics are handed this.
import Runtime

public final class ReleaseAutomation: Sendable {
    public let rollouts: RolloutRunner
    public let guards: GuardBoard

    public init(state: RuntimeState) {
        rollouts = RolloutRunner(state: state)
        guards = GuardBoard(state: state)
        rollouts.guards = guards
        state.observe(rollouts)
        state.observe(guards)
    }
}
