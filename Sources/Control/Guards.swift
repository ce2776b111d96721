// Guarded changes: a committed change (a flip, `set live`, `set weights`, an endpoint edit or a
// transaction) with `--bake SECONDS --revert-if-error-rate R [--revert-if-p99-ms MS]`. During the
// bake a timer on the state queue reads the cumulative outcome counters of what the change
// affects (no per-request work: differences of the counters every worker already keeps) and on
// a breach commits the previous values of exactly what the change touched, as one change.
// Values something else changed meanwhile are left alone and named. Guards live in memory only:
// a restart or crash during a bake keeps the change and forgets the guard.
import Dispatch
import Foundation
import Proxy
import Routing
import Synchronization

/// The options of a guarded change.
struct GuardOptions: Sendable, Equatable {
    var bakeSeconds: Double
    /// Largest 5xx share (0...1) of a watched upstream or variant before the change reverts.
    var maxErrorRate: Double?
    /// Largest p99 in ms (histogram bucket bound) before the change reverts.
    var maxP99Ms: Double?
    /// Largest ratio of the p99 to its baseline's p99 (GuardBaseline) before the change reverts.
    var maxP99Ratio: Double?
    /// A reading decides nothing below this many responses since the bake started.
    var minRequests: UInt64 = 10

    static let words = ["--bake", "--revert-if-error-rate", "--revert-if-p99-ms", "--revert-if-p99-ratio", "--min-requests"]
    static let usage = "[--bake SECONDS --revert-if-error-rate R [--revert-if-p99-ms MS] [--revert-if-p99-ratio X] [--min-requests N]]"

    /// Takes the guard options (`--bake 30` or `--bake=30`) out of `args`; nil when there are none.
    static func extract(_ args: [String], command: String) throws(ControlError) -> (args: [String], options: GuardOptions?) {
        var rest: [String] = []
        var values: [String: String] = [:]
        var i = 0
        while i < args.count {
            let a = args[i]
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            guard a.hasPrefix("--"), words.contains(parts[0]) else {
                rest.append(a)
                i += 1
                continue
            }
            let value: String
            if parts.count == 2 {
                value = parts[1]
            } else {
                guard i + 1 < args.count else { throw ControlError("\(command): \(a) needs a value") }
                value = args[i + 1]
                i += 1
            }
            if values[parts[0]] != nil { throw ControlError("\(command): \(parts[0]) is given twice") }
            values[parts[0]] = value
            i += 1
        }
        guard !values.isEmpty else { return (args, nil) }
        guard let bakeText = values["--bake"] else {
            throw ControlError("\(command): --revert-if-… needs --bake SECONDS (how long to watch)")
        }
        guard let bake = Double(bakeText), bake > 0, bake <= 86_400 else {
            throw ControlError("\(command): --bake must be a number of seconds above 0 and at most 86400, got \"\(bakeText)\"")
        }
        var options = GuardOptions(bakeSeconds: bake)
        if let text = values["--revert-if-error-rate"] {
            let number = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
            guard let rate = number, rate >= 0, rate < 1 else {
                throw ControlError("\(command): --revert-if-error-rate must be a share from 0 to below 1 (0.05 or 5%), got \"\(text)\"")
            }
            options.maxErrorRate = rate
        }
        if let text = values["--revert-if-p99-ms"] {
            guard let ms = Double(text), ms > 0 else {
                throw ControlError("\(command): --revert-if-p99-ms must be a number of milliseconds above 0, got \"\(text)\"")
            }
            options.maxP99Ms = ms
        }
        if let text = values["--revert-if-p99-ratio"] {
            guard let ratio = Double(text), ratio > 0 else {
                throw ControlError("\(command): --revert-if-p99-ratio must be a number above 0 (1.5: half again the baseline's p99), got \"\(text)\"")
            }
            options.maxP99Ratio = ratio
        }
        if let text = values["--min-requests"] {
            guard let n = UInt64(text), n >= 1 else {
                throw ControlError("\(command): --min-requests must be a whole number from 1, got \"\(text)\"")
            }
            options.minRequests = n
        }
        guard options.maxErrorRate != nil || options.maxP99Ms != nil || options.maxP99Ratio != nil else {
            throw ControlError("\(command): --bake needs a limit to watch: --revert-if-error-rate R, --revert-if-p99-ms MS "
                + "and/or --revert-if-p99-ratio X")
        }
        return (rest, options)
    }

    var value: ControlValue {
        var v: ControlValue = ["bakeSeconds": .double(bakeSeconds), "minRequests": .int(Int(minRequests))]
        if let maxErrorRate { v.set("maxErrorRate", .double(maxErrorRate)) }
        if let maxP99Ms { v.set("maxP99Ms", .double(maxP99Ms)) }
        if let maxP99Ratio { v.set("maxP99Ratio", .double(maxP99Ratio)) }
        return v
    }
}

/// One value a change set, as text: a live color, a weight, a mirror percent ("0" for none),
/// an endpoint's state in its pool (`absent`, `serving`, `draining`).
struct GuardFacet: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case live(upstream: String)
        case weight(route: String, variant: String)
        case mirror(route: String, upstream: String)
        case endpoint(pool: PoolKey, address: String)
    }

    var kind: Kind
    var before: String
    var after: String

    var name: String {
        switch kind {
        case .live(let u): return "live \(u)"
        case .weight(let r, let v): return "weight \(r)/\(v)"
        case .mirror(let r, let u): return "mirror \(r) \(u)"
        case .endpoint(let p, let a): return "endpoint \(p) \(a)"
        }
    }

    /// The value of `kind` in `config`; nil when it names nothing there.
    static func value(_ kind: Kind, in config: Config) -> String? {
        switch kind {
        case .live(let u):
            return config[upstream: u]?.blueGreen?.live.name
        case .weight(let r, let v):
            return config[route: r]?.split?.variants.first { $0.name == v }.map { String($0.weight) }
        case .mirror(let r, let u):
            guard let route = config[route: r] else { return nil }
            return ControlValue.format(route.mirrorIndex(upstream: u).map { route.mirrors[$0].percent } ?? 0)
        case .endpoint(let p, let a):
            guard let pool = config[upstream: p.upstream]?.pool(p.color) else { return nil }
            guard let i = pool.endpointIndex(address: a) else { return "absent" }
            return pool.endpoints[i].draining ? "draining" : "serving"
        }
    }

    /// The changes that set this facet back to `before` from `after`.
    var inverse: [RuntimeChange] {
        switch kind {
        case .live(let u):
            return Color(name: before).map { [.live(upstream: u, color: $0)] } ?? []
        case .weight(let r, let v):
            return Int(before).map { [.weights(route: r, weights: [.init(variant: v, weight: $0)])] } ?? []
        case .mirror(let r, let u):
            return Double(before).map { [.mirror(route: r, upstream: u, percent: $0)] } ?? []
        case .endpoint(let p, let a):
            switch before {
            case "absent": return [.endpoint(.remove, pool: p, address: a)]
            case "serving": return [.endpoint(.add, pool: p, address: a)]
            default: return after == "absent" ? [.endpoint(.add, pool: p, address: a), .endpoint(.drain, pool: p, address: a)]
                                             : [.endpoint(.drain, pool: p, address: a)]
            }
        }
    }

    /// What `changes` touched, with the values before and after: only the routes and
    /// upstreams they name are compared, and only differing values are kept.
    static func diff(_ changes: [RuntimeChange], before: Config, after: Config) -> [GuardFacet] {
        var upstreams: [String] = []
        var routes: [String] = []
        for change in changes {
            switch change {
            case .live(let u, _): upstreams.append(u)
            case .weights(let r, _), .mirror(let r, _, _): routes.append(r)
            case .endpoint(_, let p, _): upstreams.append(p.upstream)
            case .reset(let name): upstreams.append(name); routes.append(name)
            }
        }
        var kinds: [Kind] = []
        for u in Set(upstreams).sorted() {
            let a = before[upstream: u], b = after[upstream: u]
            if a?.blueGreen != nil || b?.blueGreen != nil { kinds.append(.live(upstream: u)) }
            for color in [Color?.none, .blue, .green] {
                var addresses: [String] = []
                for pool in [a?.pool(color), b?.pool(color)].compactMap({ $0 }) {
                    for e in pool.endpoints where !addresses.contains(e.address.description) { addresses.append(e.address.description) }
                }
                kinds += addresses.map { .endpoint(pool: PoolKey(upstream: u, color: color), address: $0) }
            }
        }
        for r in Set(routes).sorted() {
            let a = before[route: r], b = after[route: r]
            var variants: [String] = []
            for v in (a?.split?.variants ?? []) + (b?.split?.variants ?? []) where !variants.contains(v.name) { variants.append(v.name) }
            kinds += variants.map { .weight(route: r, variant: $0) }
            var shadows: [String] = []
            for m in (a?.mirrors ?? []) + (b?.mirrors ?? []) where !shadows.contains(m.upstream) { shadows.append(m.upstream) }
            kinds += shadows.map { .mirror(route: r, upstream: $0) }
        }
        return kinds.compactMap { kind in
            guard let x = value(kind, in: before), let y = value(kind, in: after), x != y else { return nil }
            return GuardFacet(kind: kind, before: x, after: y)
        }
    }
}

/// What a bake reads: the responses of an upstream (every route and variant sending to it; the
/// latency of its pool `color`), or of one variant of a route.
enum GuardWatch: Sendable, Equatable {
    case upstream(String, color: Color?)
    case variant(route: String, variant: String)

    var name: String {
        switch self {
        case .upstream(let u, let c): return "upstream \(c.map { "\(u)/\($0.name)" } ?? u)"
        case .variant(let r, let v): return "variant \(r)/\(v)"
        }
    }

    /// The upstreams and variants that `facets` send more traffic to.
    static func affected(by facets: [GuardFacet], after config: Config) -> [GuardWatch] {
        var out: [GuardWatch] = []
        func add(_ w: GuardWatch) { if !out.contains(w) { out.append(w) } }
        for f in facets {
            switch f.kind {
            case .live(let u): add(.upstream(u, color: Color(name: f.after)))
            case .endpoint(let p, _): add(.upstream(p.upstream, color: p.color))
            case .weight(let r, let v) where (Int(f.after) ?? 0) > (Int(f.before) ?? 0): add(.variant(route: r, variant: v))
            case .weight, .mirror: break
            }
        }
        // Weights only went down: the variants still weighted take the traffic.
        for f in facets {
            guard case .weight(let r, _) = f.kind, !out.contains(where: { if case .variant(r, _) = $0 { true } else { false } }) else { continue }
            for v in config[route: r]?.split?.variants ?? [] where v.weight > 0 { add(.variant(route: r, variant: v.name)) }
        }
        return out
    }

    /// Cumulative responses, 5xx (from the upstream or the proxy) and latency buckets.
    func sample(_ metrics: ProxyMetrics) -> GuardSample {
        var s = GuardSample()
        var latencyFromRoutes = false
        for (id, series) in metrics.series.routes.all() {
            let v = series.values
            switch self {
            case .upstream(let u, _): guard v[2] == u else { continue }
            case .variant(let r, let name): guard v[0] == r && v[1] == name else { continue }
                latencyFromRoutes = true
            }
            let slots = metrics.totals(\.responses, id)
            s.total &+= slots.reduce(0, &+)
            s.errors &+= slots[8] &+ slots[9]
            if latencyFromRoutes { s.add(metrics.totals(\.requestDuration, id)) }
        }
        if case .upstream(let u, let color) = self,
           let id = metrics.series.pools.existingID([u, color?.name ?? MetricSeries.noColor]) {
            s.add(metrics.totals(\.upstreamResponse, id))
        }
        return s
    }
}

/// What `--revert-if-p99-ratio` compares a watch's p99 with: for an upstream, the latency history
/// of the pool that served before the change (the previous color after a flip, the pool itself
/// after an endpoint edit) up to the commit; for a variant, the route's other weighted variants
/// over the same window.
enum GuardBaseline: Sendable {
    case history(name: String, GuardSample)
    case window(name: String, [GuardWatch], start: [GuardSample])

    var name: String {
        switch self {
        case .history(let name, _), .window(let name, _, _): return name
        }
    }

    /// The baseline of `watch`, read with `sample` (at the commit).
    static func of(_ watch: GuardWatch, facets: [GuardFacet], after config: Config, watches: [GuardWatch],
                   sample: (GuardWatch) -> GuardSample) -> GuardBaseline? {
        switch watch {
        case .upstream(let u, let color):
            var previous = color
            for f in facets { if case .live(u) = f.kind { previous = Color(name: f.before) } }
            let pool = GuardWatch.upstream(u, color: previous)
            return .history(name: pool.name + " before the change", sample(pool))
        case .variant(let r, let v):
            let others = (config[route: r]?.split?.variants ?? []).filter { $0.name != v && $0.weight > 0 }
                .map { GuardWatch.variant(route: r, variant: $0.name) }.filter { !watches.contains($0) }
            guard !others.isEmpty else { return nil }
            return .window(name: others.map(\.name).joined(separator: " + "), others, start: others.map(sample))
        }
    }

    /// The latency to compare with now.
    func current(_ metrics: ProxyMetrics?) -> GuardSample {
        switch self {
        case .history(_, let s): return s
        case .window(_, let watches, let start):
            var total = GuardSample()
            for (i, w) in watches.enumerated() {
                let d = (metrics.map { w.sample($0) } ?? GuardSample()).minus(start[i])
                total.total &+= d.total
                total.errors &+= d.errors
                total.add(d.buckets)
            }
            return total
        }
    }
}

struct GuardSample: Sendable {
    var total: UInt64 = 0
    var errors: UInt64 = 0
    var buckets = [UInt64](repeating: 0, count: LatencyBuckets.count + 1)

    mutating func add(_ histogram: [UInt64]) {
        for i in buckets.indices where i < histogram.count { buckets[i] &+= histogram[i] }
    }

    /// Since `start` (counters only grow while their series lives).
    func minus(_ start: GuardSample) -> GuardSample {
        var d = GuardSample()
        d.total = total &- min(start.total, total)
        d.errors = errors &- min(start.errors, errors)
        for i in buckets.indices { d.buckets[i] = buckets[i] &- min(start.buckets[i], buckets[i]) }
        return d
    }

    var latencyCount: UInt64 { buckets.reduce(0, &+) }
    var errorRate: Double { total == 0 ? 0 : Double(errors) / Double(total) }
    var p99Ms: Double? {
        MetricsReport.Histogram(labels: "", values: [], buckets: buckets, sumNs: 0).quantileMs(0.99)
    }
}

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
    let start: [GuardSample]
    /// For `--revert-if-p99-ratio`, by watch.
    let baselines: [GuardBaseline?]
    var outcome = Outcome.baking
    var reason: String?
    var readings: [ControlValue] = []
    var revertVersion: UInt64?
    var notReverted: [String] = []
    var finished: Date?
    var timer: (any DispatchSourceTimer)?

    init(id: Int, summary: String, options: GuardOptions, version: UInt64, facets: [GuardFacet], watches: [GuardWatch],
         start: [GuardSample], baselines: [GuardBaseline?]) {
        self.baselines = baselines
        self.id = id
        self.summary = summary
        self.options = options
        self.version = version
        self.facets = facets
        self.watches = watches
        self.start = start
        started = Date()
        deadline = started.addingTimeInterval(options.bakeSeconds)
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
public final class GuardBoard: @unchecked Sendable {
    private(set) var records: [GuardRecord] = []
    private var nextID = 1
    let reverts = Atomic<UInt64>(0)
    /// Finished guards kept for `show guards`.
    static let kept = 50

    public init() {}

    public var revertCount: UInt64 { reverts.load(ordering: .relaxed) }

    static func time(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    func add(_ make: (Int) -> GuardRecord) -> GuardRecord {
        let record = make(nextID)
        nextID += 1
        records.append(record)
        let finished = records.filter { $0.outcome != .baking }
        if finished.count > Self.kept, let oldest = finished.first { records.removeAll { $0 === oldest } }
        return record
    }
}

extension RuntimeState {
    /// Commits `changes`; with `options`, starts a bake over what they touched. The reply's
    /// `guard` member says what is watched and until when.
    func commit(_ changes: [RuntimeChange], guarded options: GuardOptions?) throws(ControlError) -> (result: CommitResult, guard: ControlValue?) {
        guard let options else { return (try commit(changes), nil) }
        let before = config
        let samplesBefore = server.map { metrics in { (w: GuardWatch) in w.sample(metrics.metrics) } }
        let result = try commit(changes)
        let facets = GuardFacet.diff(changes, before: before, after: config)
        guard !facets.isEmpty else { return (result, ["state": "none", "reason": "the change set nothing that differs; nothing to watch"]) }
        let watches = GuardWatch.affected(by: facets, after: config)
        let summary = changes.map(\.summary).joined(separator: "; ")
        let sample = { (w: GuardWatch) in samplesBefore?(w) ?? GuardSample() }
        let baselines = options.maxP99Ratio == nil ? watches.map { _ in nil } : watches.map {
            GuardBaseline.of($0, facets: facets, after: config, watches: watches, sample: sample)
        }
        let record = guards.add { id in
            GuardRecord(id: id, summary: summary, options: options, version: result.version, facets: facets, watches: watches,
                        start: watches.map(sample), baselines: baselines)
        }
        log("guard \(record.id): baking \(summary) (version \(result.version)) for \(ControlValue.format(options.bakeSeconds)) s, "
            + "watching " + (watches.isEmpty ? "nothing (no traffic moves)" : watches.map(\.name).joined(separator: ", ")))
        // Readings every half second at most (bake / 20 for short bakes): a bad change serves
        // for about that long after its traffic reaches --min-requests.
        let interval = min(0.5, max(0.05, options.bakeSeconds / 20))
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self, weak record] in
            guard let self, let record else { return }
            self.check(record)
        }
        record.timer = timer
        timer.resume()
        return (result, record.value)
    }

    /// One reading of a baking guard: revert on a breach, pass at the deadline.
    private func check(_ record: GuardRecord) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard record.outcome == .baking else { return }
        var breach: String?
        var readings: [ControlValue] = []
        for (i, watch) in record.watches.enumerated() {
            let d = (server.map { watch.sample($0.metrics) } ?? GuardSample()).minus(record.start[i])
            var reading: ControlValue = ["watch": .string(watch.name), "requests": ControlValue(d.total), "errors": ControlValue(d.errors),
                                         "errorRate": .double(d.errorRate)]
            if let p99 = d.p99Ms { reading.set("p99Ms", .double(p99)) }
            let base = record.baselines[i].map { ($0.name, $0.current(server?.metrics)) }
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
        record.readings = readings
        if let breach {
            revert(record, because: breach)
        } else if Date() >= record.deadline {
            finish(record, .passed)
            let thin = readings.filter { ($0["requests"]?.int ?? 0) < Int(record.options.minRequests) }.compactMap { $0["watch"]?.string }
            if !thin.isEmpty {
                record.reason = "too little traffic to judge (fewer than \(record.options.minRequests) responses): "
                    + thin.joined(separator: ", ")
            }
            log("guard \(record.id): passed: \(record.summary) stays at version \(record.version) ("
                + readings.map { "\($0["watch"]?.string ?? ""): \($0["errors"]?.int ?? 0)/\($0["requests"]?.int ?? 0) 5xx" }
                    .joined(separator: ", ") + ")" + (record.reason.map { "; " + $0 } ?? ""))
        }
    }

    /// Commits the previous values of what the guard's change touched, those that still hold
    /// the value the change set, as one change.
    private func revert(_ record: GuardRecord, because breach: String) {
        var changes: [RuntimeChange] = []
        for f in record.facets {
            let now = GuardFacet.value(f.kind, in: config)
            if now == f.after {
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
            guards.reverts.wrappingAdd(1, ordering: .relaxed)
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
    }

    /// `show guards`: every baking guard and the last finished ones, newest first.
    var guardsValue: ControlValue {
        let all = guards.records.reversed()
        return ["guards": .array(all.map(\.value)), "baking": .int(all.filter { $0.outcome == .baking }.count),
                "revertedTotal": ControlValue(guards.revertCount),
                "note": "guards are kept in memory only: a restart keeps the change and ends its bake"]
    }
}
