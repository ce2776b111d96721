// A worker's part in experiments: each request on an experiment's route exposes its unit to the
// variant it is served (the book counts it; a first exposure is logged), and each finished
// request that reached a goal converts its unit when the status says so.
import Experiments
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
            let names = x.lineNames[experiment]
            guard d.variant < names.variants.count else { return }
            logExposure(log, experiment: names.experiment, variant: names.variants[d.variant], decision: d, instance: x.instance)
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

    /// `{"time":...,"experiment":...,"unit":...,"variant":...,"bucket":...,"keyed":...,"instance":...}`;
    /// the names come as JSON strings already.
    private func logExposure(_ log: ExposureLog, experiment: [UInt8], variant: [UInt8], decision d: Decision, instance: [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: 160 + experiment.count + variant.count + instance.count, alignment: 1) { buffer in
            var w = LineWriter(buffer)
            w.append(#"{"time":""#)
            w.timestamp(Timestamp.nowNs())
            w.append(#"","experiment":"#)
            w.append(experiment)
            w.append(#","unit":""#)
            w.hex(d.unit)
            w.append(#"","variant":"#)
            w.append(variant)
            w.append(#","bucket":"#)
            w.decimal(Int(d.bucket))
            w.append(d.keyedUnit ? #","keyed":true,"instance":"# : #","keyed":false,"instance":"#)
            w.append(instance)
            w.append("}\n")
            _ = log.append(UnsafeRawBufferPointer(rebasing: buffer[0..<w.count]))
        }
    }
}

/// Bytes into a buffer the caller sized: no allocation for an exposure line.
private struct LineWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let n = min(bytes.count, buffer.count - count)
        guard n > 0 else { return }
        UnsafeMutableRawBufferPointer(rebasing: buffer[count..<count + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        count += n
    }

    mutating func timestamp(_ ns: UInt64) {
        guard buffer.count - count >= Timestamp.length else { return }
        Timestamp.write(ns, to: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + count)
        count += Timestamp.length
    }

    mutating func hex(_ v: UInt64) {
        guard buffer.count - count >= 16 else { return }
        count += UnitID.write(v, into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
    }

    mutating func decimal(_ v: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var x = v.magnitude
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - n] = UInt8(truncatingIfNeeded: 48 + x % 10)
                x /= 10
                n += 1
            } while x > 0 && n < 20
            if v < 0 { append("-") }
            append(UnsafeRawBufferPointer(rebasing: d[(20 - n)...]))
        }
    }
}
