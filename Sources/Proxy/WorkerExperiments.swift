// A worker's part in experiments: each request on an experiment's route exposes its unit to the
// variant it is served (the book counts it; a first exposure is logged), and each finished
// request that reached a goal converts its unit when the status says so.
import Routing

extension Worker {
    /// The experiments of the snapshot just adopted (nil when it runs none).
    func bindExperiments(_ snapshot: Snapshot) {
        experiments = snapshot.experimentRoutes.isEmpty ? nil : experimentRegistry.binding(for: snapshot)
    }

    /// At decision time: the unit's exposure.
    @inline(__always)
    func exposeUnit(_ e: inout Exchange) {
        guard let x = experiments else { return }
        e.experimentsVersion = x.version
        let d = e.decision
        guard d.unit != 0 else { return }
        let experiment = snapshot.experiment(route: d.route)
        guard experiment >= 0, experiment < x.books.count else { return }
        let variant = x.bookVariant(experiment, d.variant)
        guard variant >= 0 else { return }
        let book = x.books[experiment]
        if book.expose(unit: d.unit, variant: variant, new: d.newUnit, keyed: d.keyedUnit), let log = x.logs[experiment] {
            logExposure(log, book: book, decision: d, variant: Int(variant), instance: x.instance)
        }
    }

    /// When the exchange finished: each goal it reached converts with a goal's status.
    @inline(__always)
    func convertGoals(_ e: Exchange) {
        let hits = e.decision.goalHits
        guard hits.count > 0, e.status > 0, let x = experiments, x.version == e.experimentsVersion else { return }
        for i in 0..<hits.count {
            let hit = hits[i]
            let experiment = Int(hit.experiment)
            guard experiment >= 0, experiment < x.books.count else { continue }
            let variant = x.bookVariant(experiment, Int(hit.variant))
            var goals = hit.goals
            while goals != 0 {
                let g = goals.trailingZeroBitCount
                goals &= goals &- 1
                guard snapshot.goalConverts(g, status: e.status), g < x.goalSlots.count else { continue }
                x.books[experiment].convert(goal: x.goalSlots[g], unit: hit.unit, variant: variant)
            }
        }
    }

    /// `{"time":...,"experiment":...,"unit":...,"variant":...,"bucket":...,"instance":...}`
    private func logExposure(_ log: ExposureLog, book: ExperimentBook, decision d: Decision, variant: Int, instance: [UInt8]) {
        let counts = book.variantName(variant)
        var out: [UInt8] = []
        out.reserveCapacity(160 + book.name.utf8.count + counts.count + instance.count)
        out.append(literal: #"{"time":""#)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: Timestamp.length))
        out.withUnsafeMutableBufferPointer { Timestamp.write(Timestamp.nowNs(), to: $0.baseAddress! + start) }
        out.append(literal: #"","experiment":"#)
        JSONBytes.string(Array(book.name.utf8), into: &out)
        out.append(literal: #","unit":""#)
        JSONBytes.hex(d.unit, into: &out)
        out.append(literal: #"","variant":"#)
        JSONBytes.string(counts, into: &out)
        out.append(literal: #","bucket":"#)
        JSONBytes.int(Int(d.bucket), into: &out)
        out.append(literal: #","keyed":"#)
        out.append(literal: d.keyedUnit ? "true" : "false")
        out.append(literal: #","instance":"#)
        JSONBytes.string(instance, into: &out)
        out.append(literal: "}\n")
        out.withUnsafeBytes { _ = log.append($0) }
    }
}
