// What every worker derives from a snapshot in the same way: its metric series ids and the
// variant header lines. Worked out once per snapshot, by the first worker that adopts it, and
// shared by the others (each used to rebuild both on every publish); immutable once made.
import Routing
import Synchronization

final class SnapshotFrozen: @unchecked Sendable {
    // All immutable after init.
    let snapshot: Snapshot
    let metricSeries: MetricSeries
    let series: SnapshotSeries
    /// The response header naming each variant ("X-Switchyard-Variant: canary\r\n") in one
    /// arena: variantLines[variantBase[route] + variant]; variantBase is -1 for a route without.
    let variantArena: [UInt8]
    let variantLines: [Range<Int>]
    let variantBase: [Int]

    init(_ snapshot: Snapshot, _ metricSeries: MetricSeries) {
        self.snapshot = snapshot
        self.metricSeries = metricSeries
        series = SnapshotSeries(snapshot, metricSeries)
        var arena: [UInt8] = []
        var lines: [Range<Int>] = []
        var base: [Int] = []
        for r in snapshot.routes {
            guard case .split(let split) = r.target, let header = r.variantHeader else {
                base.append(-1)
                continue
            }
            base.append(lines.count)
            for v in split.variants {
                let start = arena.count
                arena += header
                arena += [UInt8(ascii: ":"), UInt8(ascii: " ")]
                arena += v.nameBytes
                arena += [13, 10]
                lines.append(start..<arena.count)
            }
        }
        variantArena = arena
        variantLines = lines
        variantBase = base
    }
}

/// The last snapshot's frozen tables, shared by the workers of one server.
final class SnapshotFreezer: Sendable {
    private let last = Mutex<SnapshotFrozen?>(nil)

    init() {}

    /// `snapshot`'s tables: made by the first caller (the others wait for them rather than
    /// making their own), then shared.
    func frozen(_ snapshot: Snapshot, _ metricSeries: MetricSeries) -> SnapshotFrozen {
        last.withLock { last in
            if let made = last, made.snapshot === snapshot, made.metricSeries === metricSeries { return made }
            let made = SnapshotFrozen(snapshot, metricSeries)
            last = made
            return made
        }
    }
}
