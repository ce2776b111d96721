// Runs the rollouts of a proxy: a timer on the RuntimeState queue reads the variants' cumulative
// counters (local, merged over the workers, or from Prometheus), advances each rollout's state
// machine and commits the weights it asks for as ordinary runtime changes, saved in the state file
// together with the rollout's status. Nothing here runs on an event loop or per request.
import Config
import Dispatch
import Foundation
import Proxy
import Runtime
import Synchronization

public final class RolloutRunner: RuntimeObserver, @unchecked Sendable {
    /// How often rollouts are looked at; steps are whole seconds, so a step ends at most this late.
    static let period = DispatchTimeInterval.milliseconds(200)

    unowned let state: RuntimeState
    private var timer: (any DispatchSourceTimer)?
    /// Routes whose saved status this process has taken over (its clock and counters restarted).
    private var adopted: Set<String> = []
    /// Prometheus readings by route: the latest answer, and routes with a query under way.
    private var remote: [String: RolloutReading] = [:]
    private var querying: Set<String> = []
    /// The gates' webhook: its last answer per route, and when it was last asked.
    /// Bakes a blue/green release's flip (set by ReleaseAutomation).
    weak var guards: GuardBoard?
    var webhookAnswers: [String: WebhookAnswer] = [:]
    var webhookAskedAt: [String: Double] = [:]
    /// Routes whose webhook is being asked now, and the queue its calls wait on.
    var webhookAsking: Set<String> = []
    let webhookCalls = DispatchQueue(label: "switchyard.rollout.webhook")
    /// Routes whose latest Prometheus answer was invalid (their step holds), and how many
    /// invalid answers in a row each has had.
    private var held: Set<String> = []
    private var invalidInARow: [String: Int] = [:]
    /// Routes whose dry-run maxSRM gate already logged what it would have done.
    private var srmDryRunLogged: Set<String> = []
    let queries = DispatchQueue(label: "switchyard.rollout.prometheus")
    package var clock: @Sendable () -> Double = { Date().timeIntervalSince1970 }
    /// When this instance last published its variants' counters (fleet mode).
    private var countsPublishedAt = 0.0

    public init(state: RuntimeState) { self.state = state }

    public func attached(_ state: RuntimeState) { start() }

    /// Starts the timer (on the state queue).
    func start() {
        dispatchPrecondition(condition: .onQueue(state.queue))
        guard timer == nil else { return }
        let t = DispatchSource.makeTimerSource(queue: state.queue)
        t.schedule(deadline: .now(), repeating: Self.period, leeway: .milliseconds(20))
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        timer = t
    }

    /// Starts configured rollouts, then advances every one that is not finished.
    func tick() {
        dispatchPrecondition(condition: .onQueue(state.queue))
        guard let server = state.server else { return }
        // In a fleet every instance publishes its counters of the variants judged without
        // Prometheus, and one instance, the elected driver, takes the steps on their sum; the
        // others watch them arrive. A driver that takes over resumes each rollout at its saved step.
        if let store = state.sharedStore { publishCounts(store, server) }
        guard state.drivesAutomation else {
            adopted.removeAll()
            publishGauges()
            return
        }
        startConfigured()
        let active = state.overrides.rollouts.filter { !$0.value.state.isFinished }
        guard !active.isEmpty else {
            publishGauges()
            return
        }
        // Local counters, alone; in a fleet the sums read in `reading` stand for them.
        let local = state.sharedStore == nil && active.contains { $0.value.plan.prometheus == nil } ? MetricsReport(server.metrics) : nil
        let now = clock()
        for route in active.keys.sorted() {
            guard var status = state.overrides.rollouts[route] else { continue }
            if let why = sampleRatioAlarm(route, status, server) {
                if !status.plan.gates.isDryRun("maxSRM") {
                    let effects = status.pause(now: now, why: why)
                    apply(route, status, effects)
                    continue
                }
                if !srmDryRunLogged.contains(route) {
                    srmDryRunLogged.insert(route)
                    state.log("rollout \(route): \(why) (dry run: would have paused)")
                }
            }
            guard let reading = reading(route, status.plan, local) else { continue }
            if !adopted.contains(route) {
                adopted.insert(route)
                if status.step >= 0 { status.resumeAfterRestart(now: now, reading: reading) }
            }
            var shadow: ShadowReading?
            if let plan = status.plan.shadow, status.step < 0 {
                shadow = ShadowReport.reading(server.metrics, route: route, shadow: plan.upstream)
            }
            askWebhookIfDue(route, status, now: now)
            let effects = status.tick(now: now, reading: reading, shadow: shadow, confirmed: webhookAnswers[route],
                                      flipped: flipOutcome(status))
            apply(route, status, effects)
        }
        publishGauges()
    }

    /// Why the rollout must pause: its `maxSRM` gate and the route's experiment, whose new units
    /// this weight epoch stray from the weights (with at least the experiment's `minUnits`).
    /// Nil when it may go on, or is paused or finished already.
    private func sampleRatioAlarm(_ route: String, _ status: RolloutStatus, _ server: ProxyServer) -> String? {
        guard let maxSRM = status.plan.gates.maxSRM, status.state != .paused, !status.state.isFinished,
              let srm = ExperimentReport.sampleRatioMismatch(route: route, state.snapshot, registry: server.experiments,
                                                             threshold: maxSRM) else { return nil }
        return "gate maxSRM: the experiment's sample ratio is off, p = \(ControlValue.format(srm.pValue)) < "
            + "\(ControlValue.format(maxSRM)) over \(srm.total) new units"
    }

    /// A rollout event for the config's hooks (`started`, `step`, `paused`, `resumed`, `promoted`,
    /// `rolled_back`, `aborted`; gate readings and waits are not posted).
    private func announce(_ route: String, _ status: RolloutStatus, _ event: RolloutEvent) {
        let names = ["start": "started", "step": "step", "pause": "paused", "resume": "resumed", "promote": "promoted",
                     "rollback": "rolled_back", "abort": "aborted", "shadow_passed": "shadow_passed"]
        guard let name = names[event.kind] else { return }
        state.hooks.emit(name, [("route", .string(route)), ("variant", .string(status.plan.variant)),
                                ("baseline", .string(status.plan.baseline)), ("step", .int(status.step + 1)),
                                ("weight", .int(status.weight)), ("detail", .string(event.detail))])
    }

    /// This instance's counters of every variant a running rollout judges on them, once a
    /// second (they go to etcd every two): the timer runs five times as often.
    private func publishCounts(_ store: any SharedStateStore, _ server: ProxyServer) {
        let now = clock()
        guard now - countsPublishedAt >= 1 || now < countsPublishedAt else { return }
        let local = state.overrides.rollouts.filter { !$0.value.state.isFinished && $0.value.plan.prometheus == nil }
        guard !local.isEmpty else { return }
        countsPublishedAt = now
        let report = MetricsReport(server.metrics)
        for (route, status) in local {
            for variant in [status.plan.variant, status.plan.baseline] {
                store.publishCounts(key: FleetCounterKey.variant(route: route, variant: variant),
                                    report.variantCounts(route: route, variant: variant))
            }
        }
    }

    /// Config rollouts start when the config that declares them loads; one already saved with
    /// the same plan goes on where it was (a restart or a reload never starts it over).
    private func startConfigured() {
        for route in state.fileConfig.routes {
            guard let plan = route.rollout else { continue }
            if let existing = state.overrides.rollouts[route.name] {
                if existing.origin != "config" || existing.plan == plan { continue }
            }
            var status = RolloutStatus(plan: plan, origin: "config", now: clock(), reading: RolloutReading())
            status.history.append(RolloutEvent(at: clock(), kind: "start", detail: "started from the config"))
            adopted.remove(route.name)
            forgetAnswers(route.name)
            state.overrides.rollouts[route.name] = status
            state.log(Self.eventLine(route.name, status, RolloutEvent(at: clock(), kind: "start", detail: "started from the config")))
            announce(route.name, status, RolloutEvent(at: clock(), kind: "start", detail: "started from the config"))
            board.count(route: route.name, event: "start")
        }
    }

    /// A new rollout of `route` starts with nothing an earlier one was told: no webhook answer
    /// (its step numbers would match the new one's) and the dry-run SRM line logged again.
    private func forgetAnswers(_ route: String) {
        webhookAnswers[route] = nil
        webhookAskedAt[route] = nil
        srmDryRunLogged.remove(route)
    }

    /// The counters of the rollout's two variants now: local, or the last Prometheus answer
    /// (asking again in the background).
    private func reading(_ route: String, _ plan: RolloutPlan, _ local: MetricsReport?) -> RolloutReading? {
        if plan.prometheus == nil, let store = state.sharedStore {
            // In a fleet without Prometheus: the sum of every instance's published counters.
            return RolloutReading(variant: store.fleetCounts(key: FleetCounterKey.variant(route: route, variant: plan.variant)),
                                  baseline: store.fleetCounts(key: FleetCounterKey.variant(route: route, variant: plan.baseline)))
        }
        if let local, plan.prometheus == nil {
            return RolloutReading(variant: local.variantCounts(route: route, variant: plan.variant),
                                  baseline: local.variantCounts(route: route, variant: plan.baseline))
        }
        guard let url = plan.prometheus, let target = PrometheusQuery.Target(url: url, caFile: plan.prometheusCAFile) else { return nil }
        if !querying.contains(route) {
            querying.insert(route)
            let queue = state.queue
            queries.async { [weak self] in
                let result = Result { () throws(PrometheusQuery.Failure) in
                    try PrometheusQuery.reading(route: route, plan: plan, at: target, bearerToken: try Self.bearerToken(plan))
                }
                queue.async { [weak self] in self?.answered(route, url, result) }
            }
        }
        // The last answer was invalid: no gate is judged (the step holds) until a valid one.
        if held.contains(route) { return nil }
        return remote[route]
    }

    /// The token of `plan`'s bearerTokenFile, read at each query so that it may rotate.
    static func bearerToken(_ plan: RolloutPlan) throws(PrometheusQuery.Failure) -> String? {
        guard let path = plan.prometheusBearerTokenFile else { return nil }
        switch ConfigFiles.read(path) {
        case .failure(let failure): throw PrometheusQuery.Failure(description: "cannot read the bearer token file \(path): \(failure)")
        case .success(let bytes):
            let token = ConfigParser.strippingTrailingNewlines(bytes)
            if let problem = PrometheusQuery.tokenProblem(token) {
                throw PrometheusQuery.Failure(description: "the bearer token in \(path) is unusable: \(problem)")
            }
            return String(decoding: token, as: UTF8.self)
        }
    }

    private func answered(_ route: String, _ url: String, _ result: Result<RolloutReading, PrometheusQuery.Failure>) {
        querying.remove(route)
        switch result {
        case .success(let r):
            remote[route] = r
            held.remove(route)
            invalidInARow[route] = nil
        case .failure(let e) where e.invalidReading:
            held.insert(route)
            let n = (invalidInARow[route] ?? 0) + 1
            invalidInARow[route] = n
            board.countInvalidReading(route: route)
            guard var status = state.overrides.rollouts[route] else { return }
            let limit = status.plan.maxInvalidReadings ?? PrometheusQuery.defaultMaxInvalidReadings
            state.log("rollout \(route): invalid reading from Prometheus at \(url) (\(n) in a row, \(limit) pause): "
                      + "\(e.description); the step holds")
            guard n >= limit, !status.state.isFinished, status.state != .paused else { return }
            let effects = status.pause(now: clock(), why: "\(n) invalid readings in a row from Prometheus (\(e.description))")
            apply(route, status, effects)
            publishGauges()
        case .failure(let e): state.log("rollout \(route): Prometheus at \(url): \(e.description)")
        }
    }

    /// The counters now for a command: local, or the last Prometheus answer (zeros without one).
    private func readingNow(_ route: String, _ plan: RolloutPlan) -> RolloutReading {
        if plan.prometheus != nil { return remote[route] ?? RolloutReading() }
        guard let server = state.server else { return RolloutReading() }
        return reading(route, plan, MetricsReport(server.metrics)) ?? RolloutReading()
    }

    /// Saves `status`, commits the weight it asks for (with the status, in one state-file
    /// write), logs and counts its events.
    func apply(_ route: String, _ status: RolloutStatus, _ effects: RolloutEffects) {
        var status = status
        state.overrides.rollouts[route] = status
        // The shadow stage's copies start and stop in the same commit as the weight (a flip
        // release has no weight: its copies stop in a commit of their own, before the flip, so
        // that the flip's guard never reverts them on).
        let mirror = effects.mirror.map { [RuntimeChange.mirror(route: route, upstream: $0.upstream, percent: $0.percent)] } ?? []
        var changes = mirror
        if let weight = effects.weight, status.plan.flip == nil || status.plan.flipsAfterSteps {
            changes.insert(.weights(route: route, weights: [
                .init(variant: status.plan.variant, weight: weight), .init(variant: status.plan.baseline, weight: 100 - weight),
            ]), at: 0)
        }
        if !changes.isEmpty {
            do throws(ControlError) {
                let result = try state.commit(changes)
                state.log("rollout \(route): \(changes.map(\.summary).joined(separator: "; ")): version \(result.version)")
            } catch {
                abortRollout(route, &status, because: "cannot apply \(changes.map(\.summary).joined(separator: "; ")): \(error.message)")
            }
        } else if effects.changed && !effects.flip {
            if let failure = state.persist() { state.log("cannot save the runtime state: \(failure)") }
        }
        if effects.flip && status.state != .aborted { flip(route, &status) }
        for event in effects.events {
            state.log(Self.eventLine(route, status, event))
            announce(route, status, event)
            board.count(route: route, event: event.kind)
        }
    }

    /// Ends the rollout because what it must do was refused: saved, logged, announced, counted.
    func abortRollout(_ route: String, _ status: inout RolloutStatus, because reason: String) {
        status.state = .aborted
        status.reason = reason
        let event = RolloutEvent(at: clock(), kind: "abort", detail: reason)
        status.history.append(event)
        state.overrides.rollouts[route] = status
        if let failure = state.persist() { state.log("cannot save the runtime state: \(failure)") }
        state.log(Self.eventLine(route, status, event))
        announce(route, status, event)
        board.count(route: route, event: "abort")
    }

    /// One structured line per event: `rollout {"route":...,"event":...}`.
    static func eventLine(_ route: String, _ s: RolloutStatus, _ e: RolloutEvent) -> String {
        let value: ControlValue = [
            "route": .string(route), "variant": .string(s.plan.variant), "event": .string(e.kind),
            "step": .int(s.step + 1), "steps": .int(s.plan.steps.count), "weight": .int(s.weight),
            "state": .string(s.state.rawValue), "detail": .string(e.detail),
        ]
        return "rollout " + value.json
    }

    // MARK: Control

    /// Starts (or replaces a finished) rollout and takes its first step at once.
    package func begin(_ route: String, _ plan: RolloutPlan) throws(ControlError) -> RolloutStatus {
        dispatchPrecondition(condition: .onQueue(state.queue))
        if let existing = state.overrides.rollouts[route], !existing.state.isFinished {
            throw ControlError("route \"\(route)\" already has a rollout \(existing.state.rawValue) at step \(existing.step + 1); "
                               + "abort or promote it first")
        }
        var status = RolloutStatus(plan: plan, origin: "control", now: clock(), reading: RolloutReading())
        let event = RolloutEvent(at: clock(), kind: "start", detail: "started by the operator")
        status.history.append(event)
        adopted.insert(route)
        forgetAnswers(route)
        state.log(Self.eventLine(route, status, event))
        announce(route, status, event)
        board.count(route: route, event: "start")
        let effects = status.tick(now: clock(), reading: readingNow(route, plan))
        apply(route, status, effects)
        publishGauges()
        return state.overrides.rollouts[route] ?? status
    }

    package enum Verb: String { case pause, resume, promote, abort, approve }

    package func control(_ route: String, _ verb: Verb) throws(ControlError) -> RolloutStatus {
        dispatchPrecondition(condition: .onQueue(state.queue))
        guard var status = state.overrides.rollouts[route] else {
            throw ControlError("route \"\(route)\" has no rollout" + didYouMean(route, among: Array(state.overrides.rollouts.keys)))
        }
        if status.state.isFinished { throw ControlError("the rollout of \"\(route)\" is already \(status.state.rawValue)") }
        let now = clock()
        let effects: RolloutEffects
        switch verb {
        case .pause:
            if status.state == .paused { throw ControlError("the rollout of \"\(route)\" is already paused") }
            if status.state == .baking {
                throw ControlError("the rollout of \"\(route)\" has flipped and bakes: its guard judges it (promote or abort it)")
            }
            effects = status.pause(now: now)
        case .resume:
            guard status.state == .paused else { throw ControlError("the rollout of \"\(route)\" is not paused") }
            invalidInARow[route] = nil
            effects = status.resume(now: now, reading: readingNow(route, status.plan))
        case .approve:
            guard let approved = status.approve(now: now) else {
                throw ControlError("the rollout of \"\(route)\" waits for no approval (its step is not over, or its next step needs none)")
            }
            effects = approved
        case .promote: effects = status.promote(now: now)
        case .abort: effects = status.abort(now: now)
        }
        apply(route, status, effects)
        publishGauges()
        return state.overrides.rollouts[route] ?? status
    }

    // MARK: Metrics

    public let board = RolloutBoard()

    private func publishGauges() {
        board.set(state.overrides.rollouts.map { (route: $0.key, status: $0.value) })
    }
}

/// What /metrics shows of the rollouts: the step and state gauges, and event counters. Written
/// on the state queue, read by the admin listener.
public final class RolloutBoard: Sendable {
    private struct Content {
        var steps: [(labels: String, value: UInt64)] = []
        var states: [(labels: String, value: UInt64)] = []
        var events: [String: UInt64] = [:]
        var invalidReadings: [String: UInt64] = [:]
    }

    private let content = Mutex(Content())

    public init() {}

    func set(_ rollouts: [(route: String, status: RolloutStatus)]) {
        var steps: [(labels: String, value: UInt64)] = []
        var states: [(labels: String, value: UInt64)] = []
        for (route, s) in rollouts.sorted(by: { $0.route < $1.route }) {
            let r = "route=\"\(SeriesTable.escape(route))\""
            steps.append(("\(r),variant=\"\(SeriesTable.escape(s.plan.variant))\"", s.step < 0 ? 0 : UInt64(s.step) + 1))
            for candidate in RolloutState.allCases {
                states.append(("\(r),state=\"\(candidate.rawValue)\"", candidate == s.state ? 1 : 0))
            }
        }
        content.withLock {
            $0.steps = steps
            $0.states = states
        }
    }

    func count(route: String, event: String) {
        let labels = "route=\"\(SeriesTable.escape(route))\",event=\"\(SeriesTable.escape(event))\""
        content.withLock { $0.events[labels, default: 0] += 1 }
    }

    func countInvalidReading(route: String) {
        let labels = "route=\"\(SeriesTable.escape(route))\""
        content.withLock { $0.invalidReadings[labels, default: 0] &+= 1 }
    }

    package func write(_ w: inout PrometheusText) {
        let c = content.withLock { $0 }
        w.family("switchyard_rollout_step", .gauge, "The step each rollout has reached (1-based; 0 before its first).", c.steps)
        w.family("switchyard_rollout_state", .gauge, "1 for each rollout's state, 0 for the others.", c.states)
        w.family("switchyard_rollout_events_total", .counter,
                 "Rollout events by route: start, step, gate, wait, pause, resume, rollback, promote, abort.",
                 c.events.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        w.family("switchyard_rollout_invalid_readings_total", .counter,
                 "Gate readings from Prometheus that were not counts (NaN, infinite, negative, too large): the step held.",
                 c.invalidReadings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}
