// What one experiment has seen in this process, shared by the workers: per variant, the new
// units of the current weight epoch (exact, for the sample-ratio check) and the distinct units
// exposed; per goal and variant, the distinct units converted (HyperLogLog sketches, which merge
// across instances). One short lock per exposure or conversion; nothing else on the request path.
import Experiments
import Routing
import Synchronization

public final class ExperimentBook: Sendable {
    public let name: String

    /// A copy of the counts, for the control plane.
    public struct Counts: Sendable {
        public var variants: [String]
        /// The split's current weights, by variant (0: no longer in the split).
        public var weights: [Int]
        /// Weight epochs so far (a new one starts when the weights change), and when this began.
        public var epoch: Int
        public var epochStartNs: UInt64
        /// New units this epoch and since start, by variant.
        public var newUnits: [UInt64]
        public var newUnitsTotal: [UInt64]
        public var exposed: [HyperLogLog]
        public var goals: [String]
        /// By goal, then variant.
        public var converted: [[HyperLogLog]]
        public var settings: Settings
    }

    public struct Settings: Sendable, Equatable {
        public var control: String
        public var srmThreshold: Double
        public var minUnits: Int
        public var exposureLog: String?
        public var firstSightPerProcess: Bool
    }

    private struct State {
        var counts: Counts
        var seen: UnitSet?
        /// The epoch's sample-ratio alarm was logged.
        var alarmed = false
    }
    private let state: Mutex<State>
    private let alarm: @Sendable (String) -> Void

    init(name: String, alarm: @escaping @Sendable (String) -> Void) {
        self.name = name
        self.alarm = alarm
        let settings = Settings(control: "", srmThreshold: 0.001, minUnits: 100, exposureLog: nil, firstSightPerProcess: false)
        state = Mutex(State(counts: Counts(variants: [], weights: [], epoch: 0, epochStartNs: Timestamp.nowNs(), newUnits: [],
                                           newUnitsTotal: [], exposed: [], goals: [], converted: [], settings: settings)))
    }

    /// Everything, sketches included (`show experiment`, /metrics). A worker's next exposure
    /// copies a sketch this shares (copy on write): read it per look, not per request.
    public var counts: Counts { state.withLock { $0.counts } }

    /// What the sample-ratio check reads: this epoch's new units against the weights.
    public struct Split: Sendable {
        public var variants: [String]
        public var weights: [Int]
        public var newUnits: [UInt64]
        public var settings: Settings
    }

    /// The sample-ratio check of this epoch's new units against the weights (nil: nothing to
    /// check yet). Variants no longer in the split and never weighted this epoch take no part.
    public static func sampleRatio(newUnits: [UInt64], weights: [Int]) -> SampleRatioResult? {
        SampleRatio.check(observed: newUnits.map { Int(clamping: $0) }, weights: weights.map(Double.init))
    }

    /// Only the split's counts, in arrays of their own: the workers' next exposures copy nothing
    /// (the rollout and guard gates read this on every tick, the workers every 64th new unit).
    public var split: Split {
        state.withLock { s in
            Split(variants: s.counts.variants, weights: s.counts.weights, newUnits: s.counts.newUnits.map { $0 },
                  settings: s.counts.settings)
        }
    }

    /// Takes a snapshot's view of the experiment: its variants (book indexes, by the split's
    /// order, returned), weights, goals (book indexes returned) and settings. New weights start a
    /// new epoch.
    func adopt(variants: [Variant], experiment: Experiment, keyed: Bool, current: Bool) -> (variants: [Int32], goals: [Int32]) {
        state.withLock { s in
            var map: [Int32] = []
            var weights = [Int](repeating: 0, count: s.counts.variants.count)
            for variant in variants {
                let i = s.counts.variants.firstIndex(of: variant.name) ?? s.counts.append(variant: variant.name)
                if i >= weights.count { weights.append(0) }
                weights[i] = variant.weight
                map.append(Int32(i))
            }
            let goals = experiment.goals.map { goal in
                Int32(s.counts.goals.firstIndex(of: goal.name) ?? s.counts.append(goal: goal.name))
            }
            guard current else { return (map, goals) }
            if weights != s.counts.weights {
                s.counts.weights = weights
                s.counts.epoch += 1
                s.counts.epochStartNs = Timestamp.nowNs()
                s.counts.newUnits = [UInt64](repeating: 0, count: weights.count)
                s.alarmed = false
            }
            let control = experiment.control >= 0 && experiment.control < variants.count ? variants[experiment.control].name : ""
            s.counts.settings = Settings(control: control, srmThreshold: experiment.srmThreshold, minUnits: experiment.minUnits,
                                         exposureLog: experiment.exposureLog,
                                         firstSightPerProcess: experiment.exposesFirstSightPerProcess)
            if (keyed || experiment.exposesFirstSightPerProcess) && s.seen == nil { s.seen = UnitSet() }
            return (map, goals)
        }
    }

    /// A request served `unit` variant `variant` (a book index). True when it is an exposure to
    /// log: a unit assigned now (`new`), or, for keyed units and with first sight per process,
    /// one this process had not seen.
    func expose(unit: UInt64, variant: Int32, new: Bool, keyed: Bool) -> Bool {
        let (exposure, check) = state.withLock { s -> (Bool, Bool) in
            let v = Int(variant)
            guard v >= 0, v < s.counts.exposed.count else { return (false, false) }
            s.counts.exposed[v].add(unit: unit)
            var first = new
            if let seen = s.seen, keyed || s.counts.settings.firstSightPerProcess {
                let unseen = seen.insert(unit)
                if keyed { first = unseen } else { first = first || unseen }
            }
            guard first else { return (false, false) }
            s.counts.newUnits[v] &+= 1
            s.counts.newUnitsTotal[v] &+= 1
            let total = s.counts.newUnits.reduce(0, &+)
            return (true, !s.alarmed && total >= UInt64(s.counts.settings.minUnits) && total % 64 == 0)
        }
        if check { checkSampleRatio() }
        return exposure
    }

    /// A goal request of `unit` (assigned `variant`) ended with a converting status.
    func convert(goal: Int32, unit: UInt64, variant: Int32) {
        state.withLock { s in
            let g = Int(goal), v = Int(variant)
            guard g >= 0, g < s.counts.converted.count, v >= 0, v < s.counts.converted[g].count else { return }
            s.counts.converted[g][v].add(unit: unit)
        }
    }

    /// Logs one warning per epoch when the new units stray from the weights.
    private func checkSampleRatio() {
        let counts = split
        guard let result = Self.sampleRatio(newUnits: counts.newUnits, weights: counts.weights),
              result.pValue < counts.settings.srmThreshold else { return }
        let first = state.withLock { s -> Bool in
            defer { s.alarmed = true }
            return !s.alarmed
        }
        guard first else { return }
        let shares = zip(counts.variants, counts.newUnits).map { "\($0)=\($1)" }.joined(separator: " ")
        alarm("experiment \(name): sample-ratio mismatch, p = \(result.pValue) (\(shares) new units against weights "
              + "\(counts.weights.map(String.init).joined(separator: "/"))): assignment is broken or units are lost")
    }
}

extension ExperimentBook.Counts {
    mutating func append(variant name: String) -> Int {
        variants.append(name)
        weights.append(0)
        newUnits.append(0)
        newUnitsTotal.append(0)
        exposed.append(HyperLogLog())
        for g in converted.indices { converted[g].append(HyperLogLog()) }
        return variants.count - 1
    }

    mutating func append(goal name: String) -> Int {
        goals.append(name)
        converted.append([HyperLogLog](repeating: HyperLogLog(), count: variants.count))
        return goals.count - 1
    }
}

/// Unit ids this process has seen, for first sight: open addressing, at most `capacity`; when
/// it fills it starts over (a unit may then count as new again here; exposure logs are read
/// with "first exposure per unit", so a repeat line changes no result).
final class UnitSet: @unchecked Sendable {
    // Used under the book's lock only.
    static let capacity = 1 << 18
    private var slots = [UInt64](repeating: 0, count: 1 << 19)
    private var count = 0

    /// True when `unit` (not 0) was not in the set.
    func insert(_ unit: UInt64) -> Bool {
        if count >= Self.capacity {
            for i in slots.indices { slots[i] = 0 }
            count = 0
        }
        let mask = slots.count - 1
        var at = Int(truncatingIfNeeded: (unit &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
        while slots[at] != 0 {
            if slots[at] == unit { return false }
            at = (at + 1) & mask
        }
        slots[at] = unit
        count += 1
        return true
    }
}
