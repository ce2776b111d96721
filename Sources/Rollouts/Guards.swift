// Guarded changes: a committed change (a flip, `set live`, `set weights`, an endpoint edit or a
// transaction) with `--bake SECONDS` and limits (`--revert-if-error-rate R`, `--revert-if-p99-ms
// MS`, `--revert-if-p99-ratio X`). During the bake a timer on the state queue reads the
// cumulative outcome counters of what the change affects (no per-request work: differences of
// the counters every worker already keeps) and on a breach commits the previous values of
// exactly what the change touched, as one change. Values something else changed meanwhile are
// left alone and named. Guards are saved with the runtime state (GuardFleet.swift: the state file,
// or a fleet's shared state): after a restart or a crash a guard bakes on to its deadline, its
// counters read again from the restart.
import Config
import Dispatch
import Foundation
import Proxy
import Routing
import Runtime
import Synchronization

/// One guarded change, from its commit to its outcome.
final class GuardRecord: @unchecked Sendable {
    enum Outcome: String { case baking, passed, reverted, superseded, revertFailed = "revert_failed" }

    let id: Int
    let summary: String
    let options: GuardOptions
    let version: UInt64
    let started: Date
    let deadline: Date
    let facets: [GuardFacet]
    let watches: [GuardWatch]
    var start: [GuardSample]
    /// For `--revert-if-p99-ratio`, by watch.
    var baselines: [GuardBaseline?]
    /// Its start samples are this baker's (false: a fleet's shared guard not yet read here).
    var baselined = true
    var outcome = Outcome.baking
    var reason: String?
    var readings: [ControlValue] = []
    var revertVersion: UInt64?
    var notReverted: [String] = []
    /// Facets whose value left what this change set at some commit after it: they belong to
    /// whoever changed them, even if a later change sets the same value again.
    var changedSince = Set<String>()
    var finished: Date?
    var timer: (any DispatchSourceTimer)?
    /// In fleet mode, its id in the shared state (`guards/ID`); the driver bakes it.
    var specID: String?

    init(id: Int, summary: String, options: GuardOptions, version: UInt64, facets: [GuardFacet], watches: [GuardWatch],
         start: [GuardSample], baselines: [GuardBaseline?], started: Date = Date(), deadline: Date? = nil) {
        self.baselines = baselines
        self.id = id
        self.summary = summary
        self.options = options
        self.version = version
        self.facets = facets
        self.watches = watches
        self.start = start
        self.started = started
        self.deadline = deadline ?? started.addingTimeInterval(options.bakeSeconds)
    }

    var value: ControlValue {
        var v: ControlValue = [
            "id": .int(id), "change": .string(summary), "version": ControlValue(version), "state": .string(outcome.rawValue),
            "started": .string(GuardBoard.time(started)), "deadline": .string(GuardBoard.time(deadline)),
            "limits": options.value, "watching": .array(watches.map { .string($0.name) }),
            "touched": .array(facets.map { ["what": .string($0.name), "before": .string($0.before), "after": .string($0.after)] }),
            "readings": .array(readings),
        ]
        if let reason { v.set("reason", .string(reason)) }
        if let revertVersion { v.set("revertVersion", ControlValue(revertVersion)) }
        if !notReverted.isEmpty { v.set("notReverted", ControlValue(notReverted)) }
        if let finished { v.set("finished", .string(GuardBoard.time(finished))) }
        return v
    }
}

/// The guards of a running proxy, confined to the state queue; the revert counter is read by
/// /metrics from any thread.
public final class GuardBoard: RuntimeObserver, @unchecked Sendable {
    var records: [GuardRecord] = []
    /// In fleet mode, the timer that publishes and judges shared guards.
    var fleetTimer: (any DispatchSourceTimer)?
    private var nextID = 1
    let reverts = Atomic<UInt64>(0)
    /// Finished guards kept for `show guards`.
    static let kept = 50
    /// The largest number a saved guard may bring back.
    static let maxID = 1_000_000_000

    /// The state guarded changes are committed to and reverted on: a guard board commits like
    /// an operator does.
    package unowned let state: RuntimeState

    public init(state: RuntimeState) { self.state = state }

    var queue: DispatchQueue { state.queue }
    var server: ProxyServer? { state.server }
    var config: Config { state.config }
    func log(_ line: String) { state.log(line) }

    /// Commits `changes` without a guard.
    func commit(_ changes: [RuntimeChange]) throws(ControlError) -> RuntimeState.CommitResult { try state.commit(changes) }

    public var revertCount: UInt64 { reverts.load(ordering: .relaxed) }

    /// Every commit, on the state queue: a baking guard's facet whose value is no longer the one
    /// its change set was changed by someone else, and is never this guard's to revert (a
    /// change, a reset, then the same change with its own bake: the first guard reverted the
    /// second's change, which was left "superseded").
    public func committed(_ result: RuntimeState.CommitResult, _ changes: [RuntimeChange]) {
        syncFleet()
        for record in records where record.outcome == .baking && result.version > record.version {
            for f in record.facets where GuardFacet.value(f.kind, in: config) != f.after {
                record.changedSince.insert(f.name)
            }
        }
    }

    /// RFC 3339 with milliseconds, by the proxy's own writer (a date formatter made per call cost
    /// about 20 µs, and `show guards` and the status page write several per guard). A time
    /// before 1970 or past 2554 (a hand-edited state file) prints as the epoch.
    static func time(_ date: Date) -> String {
        let ns = date.timeIntervalSince1970 * 1e9
        return Timestamp.string(ns: ns > 0 && ns < 1.8e19 ? UInt64(ns) : 0)
    }

    /// `id`: the number a saved guard had (kept across a restart when no record has it; it was
    /// read from the state file, so one out of range gets the next number instead).
    func add(id: Int? = nil, _ make: (Int) -> GuardRecord) -> GuardRecord {
        let n = id.flatMap { id in (1...Self.maxID).contains(id) && !records.contains { $0.id == id } ? id : nil } ?? nextID
        let record = make(n)
        nextID = max(nextID, n + 1)
        records.append(record)
        let finished = records.filter { $0.outcome != .baking }
        if finished.count > Self.kept, let oldest = finished.first { records.removeAll { $0 === oldest } }
        return record
    }
}

extension GuardBoard {
    /// Commits `changes`; with `options`, starts a bake over what they touched. The reply's
    /// `guard` member says what is watched and until when. `alongside` goes in the same commit
    /// without being watched or ever reverted.
    package func commit(_ changes: [RuntimeChange], guarded options: GuardOptions?,
                        alongside: [RuntimeChange] = []) throws(ControlError) -> (result: RuntimeState.CommitResult, guard: ControlValue?) {
        guard let options else { return (try commit(alongside + changes), nil) }
        let before = config
        let samplesBefore = server.map { metrics in { (w: GuardWatch) in w.sample(metrics.metrics) } }
        let result = try commit(alongside + changes)
        let facets = GuardFacet.diff(changes, before: before, after: config)
        guard !facets.isEmpty else { return (result, ["state": "none", "reason": "the change set nothing that differs; nothing to watch"]) }
        let watches = GuardWatch.affected(by: facets, after: config)
        let summary = changes.map(\.summary).joined(separator: "; ")
        let sample = { (w: GuardWatch) in samplesBefore?(w) ?? GuardSample() }
        let baselines = options.maxP99Ratio == nil ? watches.map { _ in nil } : watches.map {
            GuardBaseline.of($0, facets: facets, after: config, watches: watches, sample: sample)
        }
        let record = add { id in
            GuardRecord(id: id, summary: summary, options: options, version: result.version, facets: facets, watches: watches,
                        start: watches.map(sample), baselines: baselines)
        }
        if state.sharedStore != nil {
            // The fleet's driver bakes it, on the whole fleet's counters.
            record.baselined = false
            share(record)
            return (result, record.value)
        }
        log("guard \(record.id): baking \(summary) (version \(result.version)) for \(ControlValue.format(options.bakeSeconds)) s, "
            + "watching " + (watches.isEmpty ? "nothing (no traffic moves)" : watches.map(\.name).joined(separator: ", ")))
        // Saved with the state, so that a restart bakes on.
        share(record)
        bake(record)
        return (result, record.value)
    }

    /// Reads `record` on a timer of its own until it ends: every half second at most (bake / 20
    /// for short bakes), so a bad change serves for about that long after its traffic reaches
    /// --min-requests.
    func bake(_ record: GuardRecord) {
        let interval = min(0.5, max(0.05, record.options.bakeSeconds / 20))
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self, weak record] in
            guard let self, let record else { return }
            self.check(record)
        }
        record.timer = timer
        timer.resume()
    }

    /// A guard taken over (after a restart, or by a fleet's new driver) reads its counters from
    /// where they are now: the process's own began again at zero.
    func rebaseline(_ r: GuardRecord) {
        r.start = r.watches.map(sampleNow)
        r.baselines = r.options.maxP99Ratio == nil ? r.watches.map { _ in nil } : r.watches.map {
            GuardBaseline.of($0, facets: r.facets, after: config, watches: r.watches, sample: sampleNow)
        }
        r.baselined = true
    }

    /// What `watch` has counted: this process's counters, or in a fleet the sum of every
    /// instance's.
    func sampleNow(_ watch: GuardWatch) -> GuardSample {
        if let store = state.sharedStore { return GuardSample(store.fleetCounts(key: FleetCounterKey.watch(watch.name))) }
        return server.map { watch.sample($0.metrics) } ?? GuardSample()
    }

    /// One reading of a baking guard: revert on a breach, pass at the deadline.
    func check(_ record: GuardRecord) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard record.outcome == .baking else { return }
        if !record.baselined || record.start.count != record.watches.count || record.baselines.count != record.watches.count {
            rebaseline(record)
            return
        }
        var breach: String?
        var readings: [ControlValue] = []
        for (i, watch) in record.watches.enumerated() {
            let d = sampleNow(watch).minus(record.start[i])
            var reading: ControlValue = ["watch": .string(watch.name), "requests": ControlValue(d.total), "errors": ControlValue(d.errors),
                                         "errorRate": .double(d.errorRate)]
            if let p99 = d.p99Ms { reading.set("p99Ms", .double(p99)) }
            let base = record.baselines[i].map { ($0.name, $0.current(sampleNow)) }
            if let (name, b) = base, let p99 = b.p99Ms {
                reading.set("baseline", .string(name))
                reading.set("baselineP99Ms", .double(p99))
            }
            readings.append(reading)
            guard breach == nil, d.total >= record.options.minRequests else { continue }
            if let limit = record.options.maxErrorRate, d.errorRate > limit {
                breach = "error rate of \(watch.name) \(ControlValue.format(d.errorRate)) > limit \(ControlValue.format(limit)) "
                    + "(\(d.errors) of \(d.total) responses were 5xx)"
            } else if let limit = record.options.maxP99Ms, let p99 = d.p99Ms, p99 > limit {
                breach = "p99 of \(watch.name) \(ControlValue.format(p99)) ms > limit \(ControlValue.format(limit)) ms (\(d.total) responses)"
            } else if let limit = record.options.maxP99Ratio, let p99 = d.p99Ms, let (name, b) = base,
                      b.latencyCount >= record.options.minRequests, let baseP99 = b.p99Ms, p99 / baseP99 > limit {
                breach = "p99 of \(watch.name) \(ControlValue.format(p99)) ms is \(ControlValue.format((p99 / baseP99 * 100).rounded() / 100))x "
                    + "the p99 of \(name) \(ControlValue.format(baseP99)) ms > limit \(ControlValue.format(limit))x"
            }
        }
        if breach == nil, let limit = record.options.maxSRM { breach = sampleRatioBreach(record, limit: limit) }
        record.readings = readings
        if let breach {
            revert(record, because: breach)
        } else if Date() >= record.deadline {
            finish(record, .passed)
            let thin = readings.filter { UInt64(clamping: $0["requests"]?.int ?? 0) < record.options.minRequests }.compactMap { $0["watch"]?.string }
            if !thin.isEmpty {
                record.reason = "too little traffic to judge (fewer than \(record.options.minRequests) responses): "
                    + thin.joined(separator: ", ")
            }
            log("guard \(record.id): passed: \(record.summary) stays at version \(record.version) ("
                + readings.map { "\($0["watch"]?.string ?? ""): \($0["errors"]?.int ?? 0)/\($0["requests"]?.int ?? 0) 5xx" }
                    .joined(separator: ", ") + ")" + (record.reason.map { "; " + $0 } ?? ""))
        }
    }

    /// A broken split on a route whose weights the change set: its experiment's new units since
    /// the change (the weights started a new epoch) stray from the weights.
    private func sampleRatioBreach(_ record: GuardRecord, limit: Double) -> String? {
        guard let server else { return nil }
        var routes: [String] = []
        for f in record.facets { if case .weight(let route, _) = f.kind, !routes.contains(route) { routes.append(route) } }
        for route in routes {
            guard let srm = ExperimentReport.sampleRatioMismatch(route: route, state.snapshot, registry: server.experiments,
                                                                 threshold: limit) else { continue }
            return "sample ratio of \(route)'s experiment: p = \(ControlValue.format(srm.pValue)) < limit \(ControlValue.format(limit)) "
                + "over \(srm.total) new units: the split is broken"
        }
        return nil
    }

    /// Commits the previous values of what the guard's change touched, those that still hold
    /// the value the change set, as one change.
    private func revert(_ record: GuardRecord, because breach: String) {
        var changes: [RuntimeChange] = []
        for f in record.facets {
            let now = GuardFacet.value(f.kind, in: config)
            if now == f.after && !record.changedSince.contains(f.name) {
                changes += f.inverse
            } else {
                record.notReverted.append("\(f.name): now \(now ?? "gone"), set to \(f.after) by the change; changed since, left alone")
            }
        }
        record.reason = breach
        guard !changes.isEmpty else {
            finish(record, .superseded)
            log("guard \(record.id): breach (\(breach)) but everything \(record.summary) set was changed since; nothing reverted")
            return
        }
        do throws(ControlError) {
            let result = try commit(changes)
            record.revertVersion = result.version
            finish(record, .reverted)
            reverts.wrappingAdd(1, ordering: .relaxed)
            log("guard \(record.id): reverted \(record.summary) (version \(record.version)) as version \(result.version): \(breach)"
                + (record.notReverted.isEmpty ? "" : "; left alone: " + record.notReverted.joined(separator: "; ")))
        } catch {
            record.reason = breach + "; the revert was refused: " + error.message
            finish(record, .revertFailed)
            log("guard \(record.id): breach (\(breach)) but the revert was refused: \(error.message)")
        }
    }

    private func finish(_ record: GuardRecord, _ outcome: GuardRecord.Outcome) {
        record.outcome = outcome
        record.finished = Date()
        record.timer?.cancel()
        record.timer = nil
        if record.specID != nil { share(record) }
        if outcome == .reverted || outcome == .passed {
            state.hooks.emit(outcome == .reverted ? "guard_reverted" : "guard_passed",
                             [("guard", .int(record.id)), ("change", .string(record.summary)),
                              ("version", .int(Int(clamping: record.version))), ("reason", ControlValue(record.reason))])
        }
    }

    /// `show guards`: every baking guard and the last finished ones, newest first.
    package var guardsValue: ControlValue {
        let all = records.reversed()
        return ["guards": .array(all.map(\.value)), "baking": .int(all.filter { $0.outcome == .baking }.count),
                "revertedTotal": ControlValue(revertCount),
                "note": "guards are saved with the runtime state: after a restart a bake goes on to its deadline"]
    }
}
