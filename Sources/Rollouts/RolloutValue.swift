// A rollout as the control socket and the admin status page show it: state, step (1-based),
// weight, reason, time to the next step, gates, gate readings and history.
import Config
import Runtime

extension RolloutStatus {
    package func value(route: String, now: Double) -> ControlValue {
        var v: ControlValue = [
            "route": .string(route), "variant": .string(plan.variant), "baseline": .string(plan.baseline),
            "state": .string(state.rawValue), "step": .int(step + 1), "steps": .array(plan.steps.map { .int($0) }),
            "weight": .int(weight), "stepSeconds": .int(plan.stepSeconds), "origin": .string(origin),
        ]
        if let reason { v.set("reason", .string(reason)) }
        if let next = secondsToNextStep(now: now) { v.set("secondsToNextStep", .double(next)) }
        var gates: ControlValue = ["minRequests": .int(plan.gates.minRequests)]
        if let x = plan.gates.maxErrorRate { gates.set("maxErrorRate", .double(x)) }
        if let x = plan.gates.maxErrorRateRatio { gates.set("maxErrorRateRatio", .double(x)) }
        if let x = plan.gates.maxP99Ratio { gates.set("maxP99Ratio", .double(x)) }
        if let x = plan.gates.maxSRM { gates.set("maxSRM", .double(x)) }
        v.set("gates", gates)
        v.set("gateReadings", ControlValue(gateReadings))
        if let w = plan.window { v.set("window", .string(w.text)) }
        if let t = plan.startAt { v.set("startAt", .string(RolloutStatus.timestamp(t))) }
        if let p = plan.prometheus { v.set("gateSource", .string(p)) }
        v.set("history", .array(history.map { e in
            ["at": .string(RolloutStatus.timestamp(e.at)), "event": .string(e.kind), "detail": .string(e.detail)]
        }))
        return v
    }

    /// Seconds (one decimal) until the next step; nil when none is scheduled.
    package func secondsToNextStep(now: Double) -> Double? {
        nextStepAt().map { max(0, ($0 - now) * 10).rounded() / 10 }
    }
}
