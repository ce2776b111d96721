// What an experiment says so far, from the process's books: per variant the new units of the
// weight epoch against the weights (the sample-ratio check), the units exposed; per goal the
// units converted and the verdict (rates with intervals, the z-test, the always-valid p-value,
// the winner). `show experiment`, /metrics and rollout gates read it.
import Experiments
import Proxy
import Routing
import Synchronization

package struct ExperimentReport: Sendable {
    package struct Variant: Sendable {
        package var name: String
        package var weight: Int
        package var newUnits: UInt64
        package var newUnitsTotal: UInt64
        package var exposed: Int
        /// Encoded only where it is shown (`show experiment`): /metrics and the status page do not.
        package var exposedSketch: HyperLogLog
    }

    package struct Goal: Sendable {
        package var name: String
        /// By variant (as `variants`).
        package var converted: [Int]
        package var sketches: [HyperLogLog]
        package var verdict: Verdict?
    }

    package var name: String
    package var route: String
    package var control: String
    package var epoch: Int
    package var epochStartNs: UInt64
    package var variants: [Variant]
    /// The sample-ratio check of this epoch's new units (nil: fewer than two weighted variants).
    package var srm: SampleRatioResult?
    package var srmThreshold: Double
    package var minUnits: Int
    package var goals: [Goal]
    package var exposureLog: String?
    package var exposuresWritten: UInt64
    package var exposuresDropped: UInt64

    /// Units enough for the sample-ratio check to speak.
    package var srmUnits: Int { Int(clamping: variants.reduce(UInt64(0)) { $0 &+ $1.newUnits }) }

    /// The check has enough units and its p-value is below the threshold.
    package var srmMismatch: Bool {
        guard let srm else { return false }
        return srm.isMismatch(threshold: srmThreshold, minimumUnits: minUnits)
    }

    /// The first goal's winner (the primary goal): nil while there is none.
    package var winner: String? { goals.first?.verdict?.winner }

    /// Every experiment `snapshot` runs (or only `route`'s), from `registry`'s books; each look
    /// moves the always-valid p-values kept in `looks`.
    package static func all(_ snapshot: Snapshot, registry: ExperimentRegistry, looks: ExperimentLooks,
                            route: String? = nil) -> [ExperimentReport] {
        let binding = registry.binding(for: snapshot)
        var reports: [ExperimentReport] = []
        for (i, routeIndex) in snapshot.experimentRoutes.enumerated() where i < binding.books.count {
            let routeName = snapshot.routes[routeIndex].name
            if let route, route != routeName { continue }
            reports.append(ExperimentReport(book: binding.books[i], route: routeName, registry: registry, looks: looks))
        }
        return reports
    }

    /// Only the sample-ratio check of `route`'s experiment (what a rollout's `maxSRM` gate reads
    /// on every tick), with the experiment's `minUnits`; nil when the route runs none.
    package static func sampleRatio(route: String, _ snapshot: Snapshot, registry: ExperimentRegistry)
        -> (result: SampleRatioResult?, minUnits: Int)? {
        guard let index = snapshot.routes.firstIndex(where: { $0.name == route }) else { return nil }
        let experiment = snapshot.experiment(route: index)
        let binding = registry.binding(for: snapshot)
        guard experiment >= 0, experiment < binding.books.count else { return nil }
        let c = binding.books[experiment].split
        return (ExperimentBook.sampleRatio(newUnits: c.newUnits, weights: c.weights), c.settings.minUnits)
    }

    /// The mismatch of `route`'s experiment under `threshold` with its `minUnits` new units (a
    /// rollout's and a guard's `maxSRM`), or nil.
    package static func sampleRatioMismatch(route: String, _ snapshot: Snapshot, registry: ExperimentRegistry,
                                            threshold: Double) -> SampleRatioResult? {
        guard let check = sampleRatio(route: route, snapshot, registry: registry), let srm = check.result,
              srm.isMismatch(threshold: threshold, minimumUnits: check.minUnits) else { return nil }
        return srm
    }

    init(book: ExperimentBook, route: String, registry: ExperimentRegistry, looks: ExperimentLooks) {
        let c = book.counts
        name = book.name
        self.route = route
        control = c.settings.control
        epoch = c.epoch
        epochStartNs = c.epochStartNs
        variants = c.variants.indices.map { v in
            Variant(name: c.variants[v], weight: c.weights[v], newUnits: c.newUnits[v], newUnitsTotal: c.newUnitsTotal[v],
                    exposed: c.exposed[v].count, exposedSketch: c.exposed[v])
        }
        srm = ExperimentBook.sampleRatio(newUnits: c.newUnits, weights: c.weights)
        srmThreshold = c.settings.srmThreshold
        minUnits = c.settings.minUnits
        let exposed = variants.map(\.exposed)
        let names = c.variants
        let control = c.settings.control
        goals = c.goals.indices.map { g in
            let converted = c.converted[g].map(\.count)
            let arms = names.indices.map { v in
                // A sketch's estimate of converted units may exceed its estimate of exposed ones
                // by the error of each: the rate is capped at 1.
                (name: names[v], counts: Counts(conversions: min(converted[v], exposed[v]), units: exposed[v]))
            }
            let verdict = looks.look(experiment: book.name, goal: c.goals[g]) { previous in
                Verdict(variants: arms, control: control, previous: previous)
            }
            return Goal(name: c.goals[g], converted: converted, sketches: c.converted[g], verdict: verdict)
        }
        exposureLog = c.settings.exposureLog
        let log = c.settings.exposureLog.flatMap { registry.exposureLog(path: $0) }
        exposuresWritten = log?.written ?? 0
        exposuresDropped = log?.dropped ?? 0
    }
}

/// The always-valid p-values between looks, per experiment and goal: each look may only lower
/// them (the running minimum the sequential test's guarantee is about).
package final class ExperimentLooks: Sendable {
    private let running = Mutex<[String: [String: AlwaysValidPValue]]>([:])

    package init() {}

    func look(experiment: String, goal: String, _ body: ([String: AlwaysValidPValue]) -> Verdict?) -> Verdict? {
        let key = experiment + "\u{0}" + goal
        return running.withLock { r in
            let verdict = body(r[key] ?? [:])
            if let verdict {
                var next: [String: AlwaysValidPValue] = [:]
                for arm in verdict.arms { next[arm.name] = arm.alwaysValid }
                r[key] = next
            }
            return verdict
        }
    }
}
