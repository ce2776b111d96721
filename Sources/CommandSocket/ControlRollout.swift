// The rollout commands: `rollout start|pause|resume|promote|abort` and `show rollout [ROUTE]`.
// They act at once (a rollout is not a staged change), so they are refused inside a transaction.
import Config
import Foundation
import Rollouts
import Runtime

enum ControlRollout {
    static let startArguments = "ROUTE VARIANT [--steps 10,50,100 | --preset NAME] [--step-seconds N] [--max-step-seconds N] "
        + "[--max-error-rate R] [--max-error-rate-ratio R] [--max-p99-ratio R] [--min-requests N] [--baseline VARIANT]"

    static func start(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        try outsideTransaction(c)
        guard c.args.count >= 2 else { throw c.usageError("rollout start: missing arguments") }
        let route = c.args[0], variant = c.args[1]
        guard let r = c.config[route: route] else {
            throw ControlError("unknown route \"\(route)\"" + didYouMean(route, among: c.config.routes.map(\.name)))
        }
        guard let split = r.split else { throw ControlError("route \"\(route)\" has no split to roll out") }
        let names = split.variants.map(\.name)
        guard names.contains(variant) else {
            throw ControlError("route \"\(route)\" has no variant \"\(variant)\"" + didYouMean(variant, among: names))
        }
        var options: [String: String] = [:]
        var rest = c.args.dropFirst(2)
        let known = ["--steps", "--preset", "--step-seconds", "--max-step-seconds", "--max-error-rate", "--max-error-rate-ratio",
                     "--max-p99-ratio", "--min-requests", "--baseline"]
        while let flag = rest.popFirst() {
            guard known.contains(flag) else { throw c.usageError("rollout start: unknown option \"\(flag)\"" + didYouMean(flag, among: known)) }
            guard let value = rest.popFirst() else { throw c.usageError("rollout start: \(flag) needs a value") }
            options[flag] = value
        }
        if options["--steps"] != nil && options["--preset"] != nil { throw c.usageError("rollout start: --steps or --preset, not both") }
        var steps = RolloutPlan.presets["canary-10-5m"]!.steps
        var seconds = RolloutPlan.presets["canary-10-5m"]!.stepSeconds
        if let name = options["--preset"] {
            guard let preset = RolloutPlan.presets[name] else {
                throw ControlError("unknown preset \"\(name)\" (one of \(RolloutPlan.presets.keys.sorted().joined(separator: ", ")))")
            }
            (steps, seconds) = (preset.steps, preset.stepSeconds)
        }
        if let text = options["--steps"] {
            let list = text.split(separator: ",").map { Int($0) }
            guard !list.contains(nil) else { throw ControlError("--steps: \"\(text)\" is not a list of percents like 10,50,100") }
            if let problem = RolloutPlan.stepsProblem(list.map { $0! }) { throw ControlError("--steps: \(problem)") }
            steps = list.map { $0! }
        }
        func int(_ flag: String, _ range: ClosedRange<Int>) throws(ControlError) -> Int? {
            guard let text = options[flag] else { return nil }
            guard let n = Int(text), range.contains(n) else { throw ControlError("\(flag): \"\(text)\" must be an integer \(range.lowerBound)...\(range.upperBound)") }
            return n
        }
        func number(_ flag: String, _ valid: (Double) -> Bool) throws(ControlError) -> Double? {
            guard let text = options[flag] else { return nil }
            guard let x = Double(text), x.isFinite, valid(x) else { throw ControlError("\(flag): \"\(text)\" is out of range") }
            return x
        }
        seconds = try int("--step-seconds", 0...604_800) ?? seconds
        let maxStep = try int("--max-step-seconds", seconds...604_800)
        let gates = RolloutGates(maxErrorRate: try number("--max-error-rate") { (0...1).contains($0) },
                                 maxErrorRateRatio: try number("--max-error-rate-ratio") { $0 > 0 },
                                 maxP99Ratio: try number("--max-p99-ratio") { $0 > 0 },
                                 minRequests: try int("--min-requests", 0...1_000_000_000) ?? 0)
        let baseline = options["--baseline"] ?? names.first { $0 != variant }
        guard let baseline, baseline != variant, names.contains(baseline) else {
            throw ControlError("route \"\(route)\" needs another variant as the baseline (--baseline VARIANT)")
        }
        let plan = RolloutPlan(variant: variant, baseline: baseline, steps: steps, stepSeconds: seconds, maxStepSeconds: maxStep,
                               gates: gates)
        let status = try c.rollouts.begin(route, plan)
        return .reply(describe(route, status, now: c.rollouts.clock()).merging(["version": ControlValue(c.state.version)]))
    }

    static func verb(_ verb: RolloutRunner.Verb) -> @Sendable (CommandContext) throws(ControlError) -> CommandOutcome {
        { c throws(ControlError) in
            try outsideTransaction(c)
            let route = try c.expect(1)[0]
            let status = try c.rollouts.control(route, verb)
            return .reply(describe(route, status, now: c.rollouts.clock()).merging(["version": ControlValue(c.state.version)]))
        }
    }

    static func show(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(0, optional: 1)
        let rollouts = c.state.overrides.rollouts
        let now = c.rollouts.clock()
        if let route = args.first {
            guard let status = rollouts[route] else {
                throw ControlError("route \"\(route)\" has no rollout" + didYouMean(route, among: Array(rollouts.keys)))
            }
            return .reply(describe(route, status, now: now))
        }
        return .reply(["rollouts": .array(rollouts.keys.sorted().map { describe($0, rollouts[$0]!, now: now) })])
    }

    private static func outsideTransaction(_ c: CommandContext) throws(ControlError) {
        if c.session.inTransaction { throw ControlError("\(c.command.name): not inside a transaction (commit or abort first)") }
    }

    /// A rollout as a reply (RolloutValue.swift).
    static func describe(_ route: String, _ s: RolloutStatus, now: Double) -> ControlValue {
        s.value(route: route, now: now)
    }
}
