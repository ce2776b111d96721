// A progressive rollout of one variant of a route, as a pure state machine: what to do is a
// function of the plan, the status, the time and two cumulative counter readings, so every step,
// wait and gate is tested with an injected clock. RolloutRunner.swift applies its weights.
import Foundation

/// What the operator (or the config) asked for.
public struct RolloutPlan: Sendable, Equatable, Codable {
    public var variant: String
    /// The variant compared against and given the rest of the traffic.
    public var baseline: String
    /// Percent of the route's traffic for `variant` at each step, ascending, the last 100.
    public var steps: [Int]
    public var stepSeconds: Int
    /// How long a step may wait for `minRequests` before the rollout rolls back.
    public var maxStepSeconds: Int
    public var gates: RolloutGates
    public var window: RolloutWindow?
    /// Unix seconds: steps advance by this clock (fleet mode) instead of from when they began.
    public var startAt: Double?
    /// A Prometheus base URL the gates read instead of the local counters.
    public var prometheus: String?
    /// Label matchers every Prometheus query adds, so only the proxy's own series count
    /// (nil: `PrometheusRules.defaultSelector`).
    public var prometheusSelector: String?
    /// A file holding the bearer token sent to Prometheus (read at each query, so it may rotate).
    public var prometheusBearerTokenFile: String?
    /// The CA file that verifies an https Prometheus (nil: the system store).
    public var prometheusCAFile: String?
    /// Invalid Prometheus readings in a row that pause the rollout
    /// (nil: `PrometheusRules.defaultMaxInvalidReadings`).
    public var maxInvalidReadings: Int?
    /// A shadow stage before the first step (RolloutShadow.swift).
    public var shadow: RolloutShadowPlan?
    /// Indexes of the steps that wait for `rollout approve` before they begin ("approve" written
    /// before them in the config's steps); never the first.
    public var approvals: [Int]?
    /// A blue/green release: a guarded flip instead of steps, or after them when the variant is
    /// the idle color of the baseline's upstream (RolloutFlip.swift).
    public var flip: RolloutFlipPlan?

    /// A flip that ends a canary of the idle color (else the flip is the whole release).
    public var flipsAfterSteps: Bool { flip != nil && variant != baseline }

    public init(variant: String, baseline: String, steps: [Int], stepSeconds: Int, maxStepSeconds: Int? = nil,
                gates: RolloutGates = RolloutGates(), window: RolloutWindow? = nil, startAt: Double? = nil,
                prometheus: String? = nil, prometheusSelector: String? = nil, prometheusBearerTokenFile: String? = nil,
                prometheusCAFile: String? = nil, maxInvalidReadings: Int? = nil, shadow: RolloutShadowPlan? = nil,
                approvals: [Int]? = nil, flip: RolloutFlipPlan? = nil) {
        self.flip = flip
        self.shadow = shadow
        self.approvals = approvals
        self.variant = variant
        self.baseline = baseline
        self.steps = steps
        self.stepSeconds = stepSeconds
        let (six, overflow) = stepSeconds.multipliedReportingOverflow(by: 6)
        self.maxStepSeconds = maxStepSeconds ?? (overflow ? Int.max : max(six, stepSeconds > Int.max - 60 ? Int.max : stepSeconds + 60))
        self.gates = gates
        self.window = window
        self.startAt = startAt
        self.prometheus = prometheus
        self.prometheusSelector = prometheusSelector
        self.prometheusBearerTokenFile = prometheusBearerTokenFile
        self.prometheusCAFile = prometheusCAFile
        self.maxInvalidReadings = maxInvalidReadings
    }

    /// Named step plans (CodeDeploy's Canary10Percent5Minutes, Linear10PercentEvery1Minute,
    /// AllAtOnce): steps and step length.
    public static let presets: [String: (steps: [Int], stepSeconds: Int)] = [
        "canary-10-5m": ([10, 100], 300),
        "linear-10-1m": (Array(stride(from: 10, through: 100, by: 10)), 60),
        "all-at-once": ([100], 0),
    ]

    /// Why `steps` cannot be a plan, or nil.
    public static func stepsProblem(_ steps: [Int]) -> String? {
        if steps.isEmpty { return "must list at least one step" }
        if let bad = steps.first(where: { !(1...100).contains($0) }) { return "each step is a percent from 1 to 100, got \(bad)" }
        if zip(steps, steps.dropFirst()).contains(where: { $0 >= $1 }) { return "steps must increase" }
        if steps.last != 100 { return "the last step must be 100" }
        return nil
    }

    /// The longest step the config and `rollout start` accept (a week).
    public static let maxStepSecondsLimit = 604_800

    /// Why a plan read from outside the process (the state file) cannot run, or nil: the same
    /// bounds the config and `rollout start` apply, so a hand-edited file can do no more.
    public func problem() -> String? {
        if let p = Self.stepsProblem(steps) { return "steps: \(p)" }
        if !(0...Self.maxStepSecondsLimit).contains(stepSeconds) {
            return "stepSeconds \(stepSeconds) is out of range 0...\(Self.maxStepSecondsLimit)"
        }
        if !(stepSeconds...Self.maxStepSecondsLimit * 6).contains(maxStepSeconds) {
            return "maxStepSeconds \(maxStepSeconds) is out of range \(stepSeconds)...\(Self.maxStepSecondsLimit * 6)"
        }
        if let x = gates.maxErrorRate, !(0...1).contains(x) { return "gates.maxErrorRate \(x) is not a share from 0 to 1" }
        for (key, x) in [("maxErrorRateRatio", gates.maxErrorRateRatio), ("maxP99Ratio", gates.maxP99Ratio)] {
            if let x, !(x > 0 && x.isFinite) { return "gates.\(key) \(x) is not a finite number above 0" }
        }
        if !(0...1_000_000_000).contains(gates.minRequests) { return "gates.minRequests \(gates.minRequests) is out of range" }
        if let x = gates.maxSRM, !(x > 0 && x < 1) { return "gates.maxSRM \(x) is not a p-value between 0 and 1" }
        if let w = gates.webhook, !ConfigParser.isHTTPURL(w.url) || !(100...60_000).contains(w.timeoutMs) {
            return "gates.webhook is not an http(s) URL with timeoutMs 100...60000"
        }
        if let w = window, !(0..<1440).contains(w.start) || !(0..<1440).contains(w.end) || TimeZone(identifier: w.timeZone) == nil {
            return "window is not two times of the day in a known time zone"
        }
        if let t = startAt, !(t.isFinite && abs(t) < 1e11) { return "startAt is not a time" }
        if let url = prometheus, PrometheusTarget(url: url) == nil { return "gateSource \"\(url)\" is not an http:// or https://HOST:PORT URL" }
        if let selector = prometheusSelector, let p = PrometheusRules.selectorProblem(selector) { return "selector: \(p)" }
        if let file = prometheusBearerTokenFile, file.isEmpty { return "bearerTokenFile is empty" }
        if let file = prometheusCAFile, file.isEmpty { return "caFile is empty" }
        if let p = shadow?.problem() { return p }
        if let f = flip, f.upstream.isEmpty || !(1...86_400).contains(f.bakeSeconds) {
            return "flip \(f.upstream) bakeSeconds \(f.bakeSeconds) is out of range 1...86400"
        }
        if let a = approvals, a.contains(where: { !(1..<steps.count).contains($0) }) { return "approvals \(a) are not steps after the first" }
        if let n = maxInvalidReadings, !PrometheusRules.maxInvalidReadingsRange.contains(n) {
            return "maxInvalidReadings \(n) is out of range \(PrometheusRules.maxInvalidReadingsRange)"
        }
        return nil
    }
}

public struct RolloutGates: Sendable, Equatable, Codable {
    /// Largest 5xx share of the variant's requests in a step.
    public var maxErrorRate: Double?
    /// Largest variant error rate over the baseline's, same window.
    public var maxErrorRateRatio: Double?
    /// Largest variant p99 over the baseline's p99, same window.
    public var maxP99Ratio: Double?
    /// Fewest variant requests a step needs before it can pass.
    public var minRequests: Int
    /// The route's experiment: a sample-ratio check with a p-value below this (and its
    /// `minUnits` new units) pauses the rollout: a broken split invalidates every other gate.
    public var maxSRM: Double?
    /// Gates judged and logged but never acted on ("would have rolled back"): to try a new gate.
    public var dryRun: [String]?
    /// A URL that must answer 2xx before each next step begins (RolloutWebhook.swift).
    public var webhook: RolloutWebhook?

    public static let names = ["maxErrorRate", "maxErrorRateRatio", "maxP99Ratio", "maxSRM"]

    public func isDryRun(_ gate: String) -> Bool { dryRun?.contains(gate) == true }

    public init(maxErrorRate: Double? = nil, maxErrorRateRatio: Double? = nil, maxP99Ratio: Double? = nil, minRequests: Int = 0,
                maxSRM: Double? = nil, dryRun: [String]? = nil) {
        self.maxSRM = maxSRM
        self.dryRun = dryRun
        self.maxErrorRate = maxErrorRate
        self.maxErrorRateRatio = maxErrorRateRatio
        self.maxP99Ratio = maxP99Ratio
        self.minRequests = minRequests
    }
}

/// Hours in which steps may advance: `start`..`end` minutes of the day in `timeZone`
/// (an end before the start crosses midnight).
public struct RolloutWindow: Sendable, Equatable, Codable {
    public var start: Int
    public var end: Int
    public var timeZone: String

    public init(start: Int, end: Int, timeZone: String) {
        self.start = start
        self.end = end
        self.timeZone = timeZone
    }

    /// "HH:MM" to minutes of the day.
    public static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0...23).contains(h), (0...59).contains(m) else { return nil }
        return h * 60 + m
    }

    public func contains(_ time: Double) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.hour, .minute], from: Date(timeIntervalSince1970: time))
        let now = (c.hour ?? 0) * 60 + (c.minute ?? 0)
        if start == end { return true }
        return start < end ? (now >= start && now < end) : (now >= start || now < end)
    }

    public var text: String {
        func hm(_ m: Int) -> String { String(format: "%02d:%02d", m / 60, m % 60) }
        return "\(hm(start))-\(hm(end)) \(timeZone)"
    }
}

/// Cumulative counters of one variant: requests answered, 5xx among them, latency buckets
/// (per bucket, not cumulative; the last is +Inf).
public struct VariantCounts: Sendable, Equatable, Codable {
    public var requests: UInt64
    public var errors: UInt64
    public var buckets: [UInt64]

    public init(requests: UInt64 = 0, errors: UInt64 = 0, buckets: [UInt64] = []) {
        self.requests = requests
        self.errors = errors
        self.buckets = buckets
    }

    /// What happened between `earlier` and this reading (a counter that went down, after a
    /// restart, counts from zero).
    public func since(_ earlier: VariantCounts) -> VariantCounts {
        func d(_ a: UInt64, _ b: UInt64) -> UInt64 { a >= b ? a - b : a }
        let buckets = self.buckets.enumerated().map { d($0.element, $0.offset < earlier.buckets.count ? earlier.buckets[$0.offset] : 0) }
        return VariantCounts(requests: d(requests, earlier.requests), errors: d(errors, earlier.errors), buckets: buckets)
    }

    public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }

    /// The upper bound (in the bounds' unit) of the bucket holding quantile `q`; nil without data.
    public func quantile(_ q: Double, bounds: [Double]) -> Double? {
        // Saturating sums: the counts may come from another process (Prometheus, the state file).
        let total = buckets.reduce(UInt64(0)) { $0.addingReportingOverflow($1).overflow ? .max : $0 + $1 }
        guard total > 0 else { return nil }
        let rank = max(UInt64(exactly: (Double(total) * min(max(q, 0), 1)).rounded(.up)) ?? total, 1)
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() {
            seen = seen.addingReportingOverflow(n).overflow ? .max : seen + n
            if seen >= rank { return i < bounds.count ? bounds[i] : .infinity }
        }
        return .infinity
    }
}

/// Both variants' counters at one moment.
public struct RolloutReading: Sendable, Equatable, Codable {
    public var variant: VariantCounts
    public var baseline: VariantCounts

    public init(variant: VariantCounts = VariantCounts(), baseline: VariantCounts = VariantCounts()) {
        self.variant = variant
        self.baseline = baseline
    }
}

public enum RolloutState: String, Sendable, Codable, CaseIterable {
    case running, waiting, paused
    /// The shadow stage: copies compared, no user on the variant yet.
    case shadowing
    /// A blue/green release flipped and watched for its bake.
    case baking
    case rolledBack = "rolled_back"
    case promoted, aborted

    public var isFinished: Bool { self == .rolledBack || self == .promoted || self == .aborted }
}

public struct RolloutEvent: Sendable, Equatable, Codable {
    /// Unix seconds.
    public var at: Double
    /// `start`, `step`, `gate`, `wait`, `pause`, `resume`, `rollback`, `promote`, `abort`.
    public var kind: String
    public var detail: String

    public init(at: Double, kind: String, detail: String) {
        self.at = at
        self.kind = kind
        self.detail = detail
    }
}

/// Where a rollout is. Saved in the state file with the weight overrides it made.
public struct RolloutStatus: Sendable, Equatable, Codable {
    public static let maxHistory = 200

    public var plan: RolloutPlan
    /// "config" or "control": who started it.
    public var origin: String
    public var state: RolloutState
    /// Index into `plan.steps` of the step reached; -1 before the first.
    public var step: Int
    /// The variant's weight the rollout last applied (percent).
    public var weight: Int
    public var stepStartedAt: Double
    /// The counters when the step began (its gates judge the difference).
    public var mark: RolloutReading
    public var reason: String?
    /// The last gate readings, one line per gate.
    public var gateReadings: [String]
    public var history: [RolloutEvent]
    /// The shadow's comparisons when its stage began (nil outside it).
    public var shadowMark: ShadowReading?
    /// `rollout approve` let the next step begin (cleared when it does).
    public var approved: Bool?
    /// A blue/green release: the id of the guard baking its flip.
    public var flipGuard: Int?

    public init(plan: RolloutPlan, origin: String, now: Double, reading: RolloutReading) {
        self.plan = plan
        self.origin = origin
        state = .waiting
        step = -1
        weight = 0
        stepStartedAt = now
        mark = reading
        gateReadings = []
        history = []
    }

    /// Why a status read from the state file cannot go on, or nil.
    public func problem() -> String? {
        if let p = plan.problem() { return p }
        if !(-1..<plan.steps.count).contains(step) { return "step \(step) is not one of its \(plan.steps.count) steps" }
        if !(0...100).contains(weight) { return "weight \(weight) is not a percent" }
        if !(stepStartedAt.isFinite && abs(stepStartedAt) < 1e11) { return "stepStartedAt is not a time" }
        return nil
    }

    /// The variant's weight at step `index`.
    func weightAt(_ index: Int) -> Int { index < 0 ? 0 : plan.steps[min(index, plan.steps.count - 1)] }

    /// When the current step may end (nil before the first step or when finished or paused).
    public func nextStepAt() -> Double? {
        guard step >= 0, !state.isFinished, state != .paused else { return nil }
        if let startAt = plan.startAt { return startAt + (Double(step) + 1) * Double(plan.stepSeconds) }
        return stepStartedAt + Double(plan.stepSeconds)
    }
}

/// What the runner must do after a transition.
public struct RolloutEffects: Sendable, Equatable {
    /// The variant's new weight (percent), to commit.
    public var weight: Int?
    /// Events to log and count (also appended to the history).
    public var events: [RolloutEvent] = []
    /// A mirror to set with the weight, in the same commit (the shadow stage's copies).
    public var mirror: RolloutMirrorEffect?
    /// A blue/green release: flip the upstream now, guarded by the plan's gates for its bake.
    public var flip = false
    /// The status changed in a way worth saving.
    public var changed = false
}

/// Latency bucket bounds in seconds, shared by the local and the Prometheus readings.
public enum RolloutLatency {
    public static let boundsSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
}

extension RolloutStatus {
    mutating func record(_ kind: String, _ detail: String, at now: Double, into effects: inout RolloutEffects) {
        let event = RolloutEvent(at: now, kind: kind, detail: detail)
        history.append(event)
        if history.count > Self.maxHistory { history.removeFirst(history.count - Self.maxHistory) }
        effects.events.append(event)
        effects.changed = true
    }

    mutating func enter(_ index: Int, at now: Double, reading: RolloutReading, effects: inout RolloutEffects) {
        step = index
        state = .running
        reason = nil
        approved = nil
        stepStartedAt = now
        mark = reading
        weight = weightAt(index)
        effects.weight = weight
        record("step", "step \(index + 1)/\(plan.steps.count): \(plan.variant) at \(weight)%", at: now, into: &effects)
    }

    mutating func finish(_ state: RolloutState, weight: Int, kind: String, reason: String?, at now: Double,
                                 effects: inout RolloutEffects) {
        self.state = state
        self.reason = reason
        self.weight = weight
        effects.weight = weight
        record(kind, reason ?? "\(plan.variant) at \(weight)%", at: now, into: &effects)
    }

    /// The step the clock says (fleet mode): -1 before `startAt`.
    func clockStep(_ now: Double) -> Int {
        guard let startAt = plan.startAt else { return step }
        if now < startAt { return -1 }
        if plan.stepSeconds == 0 { return plan.steps.count - 1 }
        // Int(exactly:) of a rounded finite quotient; anything past the last step is the last step.
        let elapsed = ((now - startAt) / Double(plan.stepSeconds)).rounded(.down)
        if elapsed.isNaN { return step }
        guard elapsed < Double(plan.steps.count) else { return plan.steps.count }
        return Int(exactly: elapsed) ?? plan.steps.count
    }

    /// Advances the rollout to `now` given the counters read now.
    /// `confirmed`: the gates' webhook answered 2xx for the current step (nil: not asked yet).
    public mutating func tick(now: Double, reading: RolloutReading, shadow shadowReading: ShadowReading? = nil,
                              confirmed: WebhookAnswer? = nil, flipped: FlipOutcome? = nil) -> RolloutEffects {
        var effects = RolloutEffects()
        if state.isFinished || state == .paused { return effects }
        if let flip = plan.flip, plan.flipsAfterSteps, state == .baking {
            tickFlip(flip, at: now, outcome: flipped, effects: &effects)
            return effects
        }
        if let flip = plan.flip, !plan.flipsAfterSteps {
            // "shadow → flip → bake": the idle color is compared first, then flipped to.
            if let shadow = plan.shadow, state != .baking {
                if state == .shadowing {
                    judgeShadow(shadow, at: now, reading: reading, shadowReading: shadowReading, effects: &effects)
                } else {
                    enterShadow(shadow, at: now, reading: shadowReading, effects: &effects)
                }
                return effects
            }
            tickFlip(flip, at: now, outcome: flipped, effects: &effects)
            return effects
        }
        let inWindow = plan.window?.contains(now) ?? true
        if state == .shadowing, let shadow = plan.shadow {
            judgeShadow(shadow, at: now, reading: reading, shadowReading: shadowReading, effects: &effects)
            return effects
        }

        // Before the first step.
        if step < 0 {
            if let startAt = plan.startAt, now < startAt {
                setWaiting("starts at \(RolloutStatus.timestamp(startAt))", at: now, effects: &effects)
                return effects
            }
            guard inWindow else {
                setWaiting("outside the window \(plan.window!.text)", at: now, effects: &effects)
                return effects
            }
            if let shadow = plan.shadow, plan.startAt == nil {
                enterShadow(shadow, at: now, reading: shadowReading, effects: &effects)
                return effects
            }
            let first = plan.startAt == nil ? 0 : min(clockStep(now), plan.steps.count - 1)
            enter(first, at: now, reading: reading, effects: &effects)
            return effects
        }

        // Within a step: an error gate fails at once when the evidence is overwhelming, so a
        // broken canary does not serve errors until the step's end (RolloutEarlyJudge.swift).
        if step >= 0, plan.startAt == nil, let failed = Self.earlyFailure(plan.gates, RolloutReading(variant: reading.variant.since(mark.variant),
                                                                        baseline: reading.baseline.since(mark.baseline))) {
            finish(.rolledBack, weight: 0, kind: "rollback", reason: "gate \(failed.line), judged early at step \(step + 1)",
                   at: now, effects: &effects)
            return effects
        }
        guard let due = nextStepAt(), now >= due else { return effects }
        guard inWindow else {
            setWaiting("outside the window \(plan.window!.text)", at: now, effects: &effects)
            return effects
        }
        // The step goes on serving (its error gates still read early) until someone approves
        // the next one; then its gates are judged on all it served.
        if plan.approvals?.contains(step + 1) == true, approved != true {
            setWaiting("step \(step + 2) waits for approval (rollout approve)", at: now, effects: &effects)
            return effects
        }
        if let webhook = plan.gates.webhook, step + 1 < plan.steps.count, confirmed?.step != step || confirmed?.ok != true {
            setWaiting("step \(step + 2) waits for the webhook \(webhook.url)" + (confirmed.map { ": \($0.detail)" } ?? ""),
                       at: now, effects: &effects)
            return effects
        }
        let delta = RolloutReading(variant: reading.variant.since(mark.variant), baseline: reading.baseline.since(mark.baseline))

        if delta.variant.requests < UInt64(clamping: plan.gates.minRequests) {
            let waited = now - stepStartedAt
            if plan.startAt == nil && waited < Double(plan.maxStepSeconds) {
                setWaiting("step \(step + 1): \(delta.variant.requests) of \(plan.gates.minRequests) requests (minRequests)",
                           at: now, effects: &effects)
                return effects
            }
            if plan.startAt == nil {
                let why = "gate minRequests: \(delta.variant.requests) requests < \(plan.gates.minRequests) within maxStepSeconds \(plan.maxStepSeconds)"
                finish(.rolledBack, weight: 0, kind: "rollback", reason: why, at: now, effects: &effects)
                return effects
            }
            // By the clock the fleet moves together; a quiet step is recorded, not judged.
            record("gate", "step \(step + 1): \(delta.variant.requests) requests < minRequests \(plan.gates.minRequests), not judged",
                   at: now, into: &effects)
        } else {
            let readings = Self.judge(plan.gates, delta)
            gateReadings = readings.map(\.line)
            for r in readings {
                let dry = !r.passed && plan.gates.isDryRun(r.gate) ? " (dry run: would have rolled back)" : ""
                record("gate", "step \(step + 1): \(r.line)\(dry)", at: now, into: &effects)
            }
            if let failed = readings.first(where: { !$0.passed && !plan.gates.isDryRun($0.gate) }) {
                finish(.rolledBack, weight: 0, kind: "rollback", reason: "gate \(failed.line)", at: now, effects: &effects)
                return effects
            }
        }
        let next = plan.startAt == nil ? step + 1 : max(clockStep(now), step + 1)
        if next >= plan.steps.count, let flip = plan.flip {
            // The canary of the idle color served its last step: the flip makes it live.
            tickFlip(flip, at: now, outcome: nil, effects: &effects)
        } else if next >= plan.steps.count {
            finish(.promoted, weight: 100, kind: "promote", reason: nil, at: now, effects: &effects)
        } else {
            enter(next, at: now, reading: reading, effects: &effects)
        }
        return effects
    }

    private mutating func setWaiting(_ why: String, at now: Double, effects: inout RolloutEffects) {
        // One event when the wait begins; the reason (a request count) keeps changing quietly.
        if state == .waiting && reason?.prefix(8) == why.prefix(8) {
            reason = why
            return
        }
        state = .waiting
        reason = why
        record("wait", why, at: now, into: &effects)
    }

    struct GateReading {
        var gate: String
        var measured: Double
        var limit: Double
        var passed: Bool
        var note = ""

        var line: String {
            "\(gate) \(Self.number(measured)) \(passed ? "<=" : ">") \(Self.number(limit))\(note)"
        }

        static func number(_ x: Double) -> String {
            if x.isInfinite { return "inf" }
            return String(format: "%.4g", x)
        }
    }

    /// Each configured gate on one step's counters.
    static func judge(_ gates: RolloutGates, _ d: RolloutReading) -> [GateReading] {
        var out: [GateReading] = []
        let rate = d.variant.errorRate
        if let limit = gates.maxErrorRate {
            out.append(GateReading(gate: "maxErrorRate", measured: rate, limit: limit, passed: rate <= limit,
                                   note: " (\(d.variant.errors)/\(d.variant.requests) 5xx)"))
        }
        if let limit = gates.maxErrorRateRatio, d.baseline.requests > 0 {
            let base = d.baseline.errorRate
            let ratio = base > 0 ? rate / base : (rate > 0 ? Double.infinity : 0)
            out.append(GateReading(gate: "maxErrorRateRatio", measured: ratio, limit: limit, passed: ratio <= limit,
                                   note: " (variant \(GateReading.number(rate)), baseline \(GateReading.number(base)))"))
        }
        if let limit = gates.maxP99Ratio, let v = d.variant.quantile(0.99, bounds: RolloutLatency.boundsSeconds),
           let b = d.baseline.quantile(0.99, bounds: RolloutLatency.boundsSeconds) {
            let ratio = v / b
            out.append(GateReading(gate: "maxP99Ratio", measured: ratio, limit: limit, passed: ratio <= limit,
                                   note: " (p99 variant \(GateReading.number(v))s, baseline \(GateReading.number(b))s)"))
        }
        return out
    }

    /// `t` (Unix seconds) in UTC, ISO 8601 to the second. By gmtime_r: a formatter made per call
    /// cost about 20 µs, and the admin status page prints a rollout's whole history.
    package static func timestamp(_ t: Double) -> String {
        guard t.isFinite, abs(t) < 1e11 else {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime]
            return f.string(from: Date(timeIntervalSince1970: t.isFinite ? t : 0))
        }
        var time = time_t(t.rounded(.down))
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return String(t) }
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}
