// Every experiment's book and exposure log, by name, kept across snapshots (a reload or a weight
// change keeps the counts; new weights start a new epoch), and each snapshot's binding: which
// book and book indexes a request's experiment, variant and goals are.
import Experiments
import Glibc
import Routing
import Synchronization

public final class ExperimentRegistry: Sendable {
    /// Written in each exposure line: which instance saw the unit.
    public let instance: String
    private struct State {
        var books: [String: ExperimentBook] = [:]
        var logs: [String: ExposureLog] = [:]
        var binding: ExperimentBinding?
    }
    private let state = Mutex(State())
    private let alarm: @Sendable (String) -> Void

    public init(instance: String = "switchyard", alarm: @escaping @Sendable (String) -> Void = { ErrorLog.write($0) }) {
        self.instance = instance
        self.alarm = alarm
    }

    /// The books of the experiments `snapshot` runs (by experiment index), made or updated once
    /// per snapshot version.
    public func binding(for snapshot: Snapshot) -> ExperimentBinding {
        state.withLock { s in
            if let b = s.binding, b.version == snapshot.version { return b }
            // An older snapshot (a worker that has not caught up) maps its indexes, but its
            // weights and settings are not the current ones.
            let current = snapshot.version > (s.binding?.version ?? 0) || s.binding == nil
            var books: [ExperimentBook] = []
            var logs: [ExposureLog?] = []
            var variantMaps: [[Int32]] = []
            var goalMaps: [[Int32]] = []
            var lineNames: [ExperimentBinding.LineNames] = []
            for route in snapshot.experimentRoutes {
                guard case .split(let split) = snapshot.routes[route].target, let experiment = split.experiment else { continue }
                let book = s.books[experiment.name] ?? ExperimentBook(name: experiment.name, alarm: alarm)
                s.books[experiment.name] = book
                let keyed = split.sticky?.key != nil
                let (variants, goals) = book.adopt(variants: split.variants, experiment: experiment, keyed: keyed,
                                                    current: current)
                books.append(book)
                lineNames.append(ExperimentBinding.LineNames(experiment: experiment.name, variants: split.variants.map(\.name)))
                variantMaps.append(variants)
                goalMaps.append(goals)
                if let path = experiment.exposureLog {
                    let log = s.logs[path] ?? ExposureLog(path: path)
                    s.logs[path] = log
                    logs.append(log)
                } else {
                    logs.append(nil)
                }
            }
            // Snapshot goals come experiment by experiment, each's in config order.
            var position = [Int](repeating: 0, count: goalMaps.count)
            let goalSlots = snapshot.goals.map { entry -> Int32 in
                let e = entry.experiment
                guard e < goalMaps.count else { return -1 }
                defer { position[e] += 1 }
                return position[e] < goalMaps[e].count ? goalMaps[e][position[e]] : -1
            }
            let b = ExperimentBinding(version: snapshot.version, books: books, logs: logs, variantMaps: variantMaps,
                                      goalSlots: goalSlots, lineNames: lineNames, instance: instance)
            if current { s.binding = b }
            return b
        }
    }

    /// Every book of an experiment the process has run (the current ones first come from
    /// `binding(for:)`).
    public func book(named name: String) -> ExperimentBook? { state.withLock { $0.books[name] } }

    /// The exposure log at `path`, if an experiment writes one.
    public func exposureLog(path: String) -> ExposureLog? { state.withLock { $0.logs[path] } }

    /// SIGUSR1: every exposure log opens its file again.
    public func reopenLogs() {
        for log in state.withLock({ Array($0.logs.values) }) { log.reopen() }
    }

    /// Waits until every exposure line queued so far is written (shutdown).
    public func drainLogs() {
        for log in state.withLock({ Array($0.logs.values) }) { log.drain() }
    }
}

/// One snapshot's experiments as the workers use them.
public final class ExperimentBinding: Sendable {
    let version: UInt64
    public let books: [ExperimentBook]
    let logs: [ExposureLog?]
    /// By experiment: the split's variant index to the book's.
    let variantMaps: [[Int32]]
    /// By snapshot goal (GoalHit bit): the book's goal index.
    let goalSlots: [Int32]
    /// By experiment: its name and its split's variant names as JSON strings, for exposure lines.
    let lineNames: [LineNames]
    /// The instance's name as a JSON string.
    let instance: [UInt8]

    struct LineNames {
        let experiment: [UInt8]
        let variants: [[UInt8]]

        init(experiment: String, variants: [String]) {
            self.experiment = jsonString(experiment)
            self.variants = variants.map(jsonString)
        }
    }

    init(version: UInt64, books: [ExperimentBook], logs: [ExposureLog?], variantMaps: [[Int32]], goalSlots: [Int32],
         lineNames: [LineNames], instance: String) {
        self.lineNames = lineNames
        self.version = version
        self.books = books
        self.logs = logs
        self.variantMaps = variantMaps
        self.goalSlots = goalSlots
        self.instance = jsonString(instance)
    }

    @inline(__always)
    func bookVariant(_ experiment: Int, _ variant: Int) -> Int32 {
        guard experiment >= 0, experiment < variantMaps.count, variant >= 0, variant < variantMaps[experiment].count else { return -1 }
        return variantMaps[experiment][variant]
    }
}

private func jsonString(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    JSONBytes.string(Array(text.utf8), into: &out)
    return out
}
