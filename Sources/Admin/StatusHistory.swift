// The counters behind the status page's "last minute": every variant's requests, 5xx and
// latency buckets (the cumulative VariantCounts a rollout's gates read), sampled every 5 s by a
// timer on the admin loop and at each look. Differences of counters the workers already keep:
// the data path does nothing for it.
import Config
import Reactor

final class StatusHistory {
    struct Sample {
        /// Loop time (monotonic ms).
        var atMs: UInt64
        /// By route, then variant.
        var counts: [String: [String: VariantCounts]]
    }

    static let intervalMs: UInt64 = 5_000
    static let windowMs: UInt64 = 60_000
    /// Oldest first, none older than the window.
    private(set) var samples: [Sample] = []

    /// Keeps `sample` when the newest kept is an interval old (or none is).
    func add(_ sample: Sample) {
        if let last = samples.last, sample.atMs < last.atMs + Self.intervalMs { return }
        samples.append(sample)
        samples.removeAll { $0.atMs + Self.windowMs < sample.atMs }
    }

    /// The sample the last minute is measured from (the oldest within it).
    var baseline: Sample? { samples.first }

    /// Requests of `route`'s `variant` in each interval from the oldest sample to `now`: a
    /// sparkline's points.
    func requestSeries(route: String, variant: String, now: Sample) -> [UInt64] {
        var points: [UInt64] = []
        var previous: VariantCounts?
        for s in samples + [now] {
            let c = s.counts[route]?[variant] ?? VariantCounts()
            if let previous { points.append(c.since(previous).requests) }
            previous = c
        }
        return points
    }
}

/// Fires every interval on the admin loop and takes a sample.
final class StatusSampler: Pollable {
    private let take: () -> Void

    init(loop: EventLoop, take: @escaping () -> Void) {
        self.take = take
        super.init(loop: loop)
    }

    func start() {
        take()
        loop.setDeadline(self, afterMs: StatusHistory.intervalMs)
    }

    override func timerFired(now: UInt64) {
        take()
        loop.setDeadline(self, afterMs: StatusHistory.intervalMs)
    }
}
