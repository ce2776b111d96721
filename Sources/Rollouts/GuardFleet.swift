// Guarded changes saved with the runtime state. Alone, a proxy keeps each guard in its state file
// and, restarted, bakes on to the saved deadline from its counters as they are then. In a fleet
// the guard goes into the shared state (`guards/ID`) with the change it bakes, so every instance
// knows it; every instance publishes the counters of what it watches, and the instance elected
// driver bakes it on their sum and commits the revert or writes the outcome. A driver that dies
// hands the bake to the next one, which reads the counters again from where they are and keeps
// the deadline.
import Config
import Dispatch
import Foundation
import Routing
import Runtime

/// A guard as the shared state holds it.
struct GuardSpec: Codable, Equatable {
    /// Its number in `show guards` (kept across a restart).
    var id: Int?
    var summary: String
    var bakeSeconds: Double
    var maxErrorRate: Double?
    var maxP99Ms: Double?
    var maxP99Ratio: Double?
    var maxSRM: Double?
    var minRequests: UInt64
    var version: UInt64
    var started: Double
    var deadline: Double
    var facets: [Facet]
    var outcome: String
    var reason: String?
    var revertVersion: UInt64?
    var notReverted: [String]?
    var finished: Double?

    /// A GuardFacet: its kind's words (`live UPSTREAM`, `weight ROUTE VARIANT`, `mirror ROUTE
    /// UPSTREAM`, `endpoint POOL ADDRESS`) and its values.
    struct Facet: Codable, Equatable {
        var kind: [String]
        var before: String
        var after: String
    }

    init(_ r: GuardRecord) {
        id = r.id
        summary = r.summary
        bakeSeconds = r.options.bakeSeconds
        maxErrorRate = r.options.maxErrorRate
        maxP99Ms = r.options.maxP99Ms
        maxP99Ratio = r.options.maxP99Ratio
        maxSRM = r.options.maxSRM
        minRequests = r.options.minRequests
        version = r.version
        started = r.started.timeIntervalSince1970
        deadline = r.deadline.timeIntervalSince1970
        facets = r.facets.map { f in
            let words: [String]
            switch f.kind {
            case .live(let u): words = ["live", u]
            case .weight(let route, let v): words = ["weight", route, v]
            case .mirror(let route, let u): words = ["mirror", route, u]
            case .endpoint(let p, let a): words = ["endpoint", p.description, a]
            }
            return Facet(kind: words, before: f.before, after: f.after)
        }
        outcome = r.outcome.rawValue
        reason = r.reason
        revertVersion = r.revertVersion
        notReverted = r.notReverted.isEmpty ? nil : r.notReverted
        finished = r.finished?.timeIntervalSince1970
    }

    /// The facets back; nil when one is not a facet (never trusted to be: another instance, or
    /// a hand, wrote it).
    var guardFacets: [GuardFacet]? {
        var out: [GuardFacet] = []
        for f in facets {
            let k = f.kind
            switch (k.first, k.count) {
            case ("live", 2): out.append(GuardFacet(kind: .live(upstream: k[1]), before: f.before, after: f.after))
            case ("weight", 3): out.append(GuardFacet(kind: .weight(route: k[1], variant: k[2]), before: f.before, after: f.after))
            case ("mirror", 3): out.append(GuardFacet(kind: .mirror(route: k[1], upstream: k[2]), before: f.before, after: f.after))
            case ("endpoint", 3):
                guard let pool = PoolKey(parsing: k[1]) else { return nil }
                out.append(GuardFacet(kind: .endpoint(pool: pool, address: k[2]), before: f.before, after: f.after))
            default: return nil
            }
        }
        return out
    }

    /// Its times, when they are times (never trusted: a hand may have written them).
    var times: (started: Date, deadline: Date)? {
        guard started.isFinite, deadline.isFinite, abs(started) < 1e11, abs(deadline) < 1e11 else { return nil }
        return (Date(timeIntervalSince1970: started), Date(timeIntervalSince1970: deadline))
    }

    var options: GuardOptions? {
        guard bakeSeconds.isFinite, bakeSeconds >= 0, bakeSeconds <= 86_400 * 7, minRequests <= GuardOptions.maxMinRequests,
              [maxErrorRate, maxP99Ms, maxP99Ratio].allSatisfy({ $0.map { $0.isFinite && $0 >= 0 } ?? true }),
              maxSRM.map({ $0 > 0 && $0 < 1 }) ?? true else { return nil }
        var o = GuardOptions(bakeSeconds: bakeSeconds)
        o.maxErrorRate = maxErrorRate
        o.maxP99Ms = maxP99Ms
        o.maxP99Ratio = maxP99Ratio
        o.maxSRM = maxSRM
        o.minRequests = minRequests
        return o
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String) -> GuardSpec? { try? JSONDecoder().decode(GuardSpec.self, from: Data(text.utf8)) }
}

extension GuardSample {
    init(_ c: VariantCounts) {
        self.init()
        total = c.requests
        errors = c.errors
        add(c.buckets)
    }
}

extension GuardBoard {
    /// Finished guards kept in the saved state (the state file, or a fleet's shared state) for `show guards`.
    static let keptSaved = 20

    /// Writes `record` (new, or finished) to the saved state: the state file, or the fleet's
    /// shared state.
    func share(_ record: GuardRecord) {
        if record.specID == nil { record.specID = "\(config.fleet?.instance ?? "local")-\(Int(record.started.timeIntervalSince1970 * 1000))-\(record.id)" }
        guard let id = record.specID else { return }
        state.overrides.guards[id] = GuardSpec(record).json
        if record.outcome != .baking {
            // Only the newest finished guards stay.
            let finished = state.overrides.guards.compactMap { key, text in GuardSpec.decode(text).flatMap { $0.finished.map { (key, $0) } } }
            for (key, _) in finished.sorted(by: { $0.1 > $1.1 }).dropFirst(Self.keptSaved) { state.overrides.guards[key] = nil }
        }
        if let failure = state.persist() { log("guard \(record.id): cannot save it: \(failure)") }
        if state.sharedStore != nil { startFleetTimer() }
    }

    /// When the proxy starts (alone; a fleet reads its guards in `syncFleet`): the guards saved
    /// in the state file come back, and those still baking bake on to their deadline.
    public func attached(_ state: RuntimeState) {
        guard state.sharedStore == nil else { return }
        var saved: [(key: String, spec: GuardSpec)] = []
        for (key, text) in state.overrides.guards.sorted(by: { $0.key < $1.key }) where !records.contains(where: { $0.specID == key }) {
            guard let spec = GuardSpec.decode(text) else {
                log("guard \(key): the saved guard cannot be read; it is dropped")
                state.overrides.guards[key] = nil
                continue
            }
            saved.append((key, spec))
        }
        // Numbers in range first, in order, so that one without gets a number no other wants.
        func rank(_ s: GuardSpec) -> Int { s.id.flatMap { (1...Self.maxID).contains($0) ? $0 : nil } ?? Int.max }
        for (key, spec) in saved.sorted(by: { rank($0.spec) < rank($1.spec) }) {
            guard let facets = spec.guardFacets, let options = spec.options, let times = spec.times else {
                log("guard \(key): the saved guard cannot be read; it is dropped")
                state.overrides.guards[key] = nil
                continue
            }
            let record = add(id: spec.id) { n in
                GuardRecord(id: n, summary: spec.summary, options: options, version: spec.version, facets: facets,
                            watches: GuardWatch.affected(by: facets, after: config), start: [], baselines: [],
                            started: times.started, deadline: times.deadline)
            }
            record.specID = key
            record.baselined = false
            if !record.take(spec) {
                log("guard \(record.id): baking on after a restart: \(spec.summary) (version \(spec.version)) until "
                    + GuardBoard.time(times.deadline))
                bake(record)
            }
        }
    }

    /// After each revision (every instance): the shared guards become local records, and the
    /// local ones take the outcome the driver wrote.
    func syncFleet() {
        guard state.sharedStore != nil else { return }
        for (id, text) in state.overrides.guards {
            guard let spec = GuardSpec.decode(text), let facets = spec.guardFacets, let options = spec.options,
                  let times = spec.times else { continue }
            let record: GuardRecord
            if let known = records.first(where: { $0.specID == id }) {
                record = known
            } else {
                record = add { n in
                    GuardRecord(id: n, summary: spec.summary, options: options, version: spec.version, facets: facets,
                                watches: GuardWatch.affected(by: facets, after: config), start: [], baselines: [],
                                started: times.started, deadline: times.deadline)
                }
                record.specID = id
                record.baselined = false
            }
            if record.outcome == .baking { _ = record.take(spec) }
        }
        records.removeAll { $0.specID != nil && state.overrides.guards[$0.specID!] == nil }
        if records.contains(where: { $0.specID != nil && $0.outcome == .baking }) { startFleetTimer() }
    }

    /// Every half second while a shared guard bakes: this instance's counters of what it
    /// watches are published; the driver reads their sums and judges.
    func startFleetTimer() {
        guard fleetTimer == nil else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + 0.5, repeating: 0.5)
        t.setEventHandler { [weak self] in self?.fleetTick() }
        t.resume()
        fleetTimer = t
    }

    private func fleetTick() {
        let baking = records.filter { $0.specID != nil && $0.outcome == .baking }
        guard !baking.isEmpty, let store = state.sharedStore else {
            fleetTimer?.cancel()
            fleetTimer = nil
            return
        }
        if let server {
            var watched: [GuardWatch] = []
            for r in baking {
                for w in r.watches + r.baselines.flatMap({ $0?.watches ?? [] }) where !watched.contains(w) { watched.append(w) }
                for f in r.facets { if case .live(let u) = f.kind { watched.append(.upstream(u, color: Color(name: f.before))) } }
            }
            for w in watched { store.publishCounts(key: FleetCounterKey.watch(w.name), w.sample(server.metrics).counts) }
        }
        guard state.drivesAutomation else {
            for r in baking { r.baselined = false }
            return
        }
        // Taken over (or new), a guard's first reading is its start (GuardBoard.check).
        for r in baking { check(r) }
    }
}

extension GuardRecord {
    /// The outcome a saved guard records, when it has one; false while it bakes.
    func take(_ spec: GuardSpec) -> Bool {
        guard let outcome = GuardRecord.Outcome(rawValue: spec.outcome), outcome != .baking else { return false }
        self.outcome = outcome
        reason = spec.reason
        revertVersion = spec.revertVersion
        notReverted = spec.notReverted ?? []
        finished = spec.finished.flatMap { $0.isFinite && abs($0) < 1e11 ? Date(timeIntervalSince1970: $0) : nil }
        return true
    }
}

extension GuardBaseline {
    var watches: [GuardWatch] {
        if case .window(_, let w, _) = self { return w }
        return []
    }
}

extension GuardSample {
    var counts: VariantCounts { VariantCounts(requests: total, errors: errors, buckets: buckets) }
}
