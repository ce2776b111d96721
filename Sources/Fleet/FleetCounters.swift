// Rollout gates and guards across a fleet without Prometheus: while a rollout judged on local
// counters or a guard is active, every instance publishes the cumulative counters it is asked
// for (a variant's, what a guard watches) to `PREFIX counters/INSTANCE` (under its membership
// lease) every two seconds, and reads everyone else's; the driver judges the sum. The last
// counters of an instance that left are kept, so a sum never goes down when one stops; one
// that restarts publishes under a new start time.
import Config
import Dispatch
import Etcd
import Foundation
import Runtime
import Synchronization

final class FleetCounters: @unchecked Sendable {
    static let period = DispatchTimeInterval.seconds(2)

    private let settings: Config.Fleet
    private let client: EtcdClient
    private unowned let state: RuntimeState
    private let membership: FleetMembership
    private let prefix: String
    private let incarnation: String
    /// Counters by instance incarnation ("name started"), then key.
    private let sums = Mutex<[String: [String: VariantCounts]]>([:])
    /// What each incarnation's counters were when first seen here, by key: a sum counts from
    /// there, so an instance that starts publishing late adds what it counts from then on,
    /// not its whole history.
    private let origins = Mutex<[String: [String: VariantCounts]]>([:])
    private let io = DispatchQueue(label: "switchyard.fleet.counters")
    private var timer: (any DispatchSourceTimer)?
    private let busy = Atomic<Bool>(false)
    /// What this instance publishes, by key, with when it was last set (state queue).
    private var local: [String: (counts: VariantCounts, at: Date)] = [:]

    init(settings: Config.Fleet, client: EtcdClient, state: RuntimeState, membership: FleetMembership) {
        self.settings = settings
        self.client = client
        self.state = state
        self.membership = membership
        prefix = settings.prefix + "counters/"
        incarnation = settings.instance + " " + membership.started
    }

    func start() {
        let t = DispatchSource.makeTimerSource(queue: state.queue)
        t.schedule(deadline: .now(), repeating: Self.period, leeway: .milliseconds(100))
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        timer = t
    }

    func stop() { timer?.cancel() }

    /// Sets this instance's counters under `key` (on the state queue).
    func set(_ key: String, _ counts: VariantCounts) {
        local[key] = (counts, Date())
        sums.withLock { $0[incarnation, default: [:]][key] = counts }
    }

    /// The sum over every instance seen (this one's counters as last set) of what each
    /// counted since it was first seen here under `key`.
    func counts(key: String) -> VariantCounts {
        var total = VariantCounts(buckets: Array(repeating: 0, count: RolloutLatency.boundsSeconds.count + 1))
        let all = sums.withLock { $0 }
        for (who, counts) in all {
            guard let now = counts[key] else { continue }
            let origin = origins.withLock { o -> VariantCounts in
                if let first = o[who]?[key] { return first }
                o[who, default: [:]][key] = now
                return now
            }
            let c = Self.difference(now, origin)
            total.requests = total.requests.addingReportingOverflow(c.requests).overflow ? .max : total.requests + c.requests
            total.errors = total.errors.addingReportingOverflow(c.errors).overflow ? .max : total.errors + c.errors
            for i in 0..<min(total.buckets.count, c.buckets.count) {
                total.buckets[i] = total.buckets[i].addingReportingOverflow(c.buckets[i]).overflow ? .max : total.buckets[i] + c.buckets[i]
            }
        }
        return total
    }

    /// `now` minus `origin`, field by field; a counter that went down counts from zero.
    static func difference(_ now: VariantCounts, _ origin: VariantCounts) -> VariantCounts {
        func d(_ a: UInt64, _ b: UInt64) -> UInt64 { a >= b ? a - b : a }
        return VariantCounts(requests: d(now.requests, origin.requests), errors: d(now.errors, origin.errors),
                             buckets: now.buckets.enumerated().map { d($0.element, $0.offset < origin.buckets.count ? origin.buckets[$0.offset] : 0) })
    }

    /// On the state queue: this instance's counters now, then published and everyone's read
    /// in the background (one exchange at a time).
    private func tick() {
        let now = Date()
        local = local.filter { now.timeIntervalSince($0.value.at) < 10 }
        guard !local.isEmpty else { return }
        let mine = local.mapValues(\.counts)
        sums.withLock { $0[incarnation] = mine }
        let lease = membership.currentLease
        guard lease != 0, !busy.exchange(true, ordering: .acquiring) else { return }
        let body = encode(mine)
        io.async { [self] in
            defer { busy.store(false, ordering: .releasing) }
            do throws(EtcdError) {
                try client.put(prefix + settings.instance, body, lease: lease)
                let read = try client.range(prefix)
                var seen: [String: [String: VariantCounts]] = [:]
                for kv in read.kvs { if let (who, counts) = decode(kv.value), who != incarnation { seen[who] = counts } }
                sums.withLock { for (who, counts) in seen { $0[who] = counts } }
            } catch {
                // The next tick tries again; the sums keep what was read last.
            }
        }
    }

    private func encode(_ counts: [String: VariantCounts]) -> [UInt8] {
        let rows: [[String: Any]] = counts.map { key, c in
            ["key": key, "requests": c.requests, "errors": c.errors, "buckets": c.buckets]
        }
        let object: [String: Any] = ["incarnation": incarnation, "counts": rows]
        return JSONValues.write(object)
    }

    /// Another instance's counters; nil for a value that is not one (never trusted to be).
    private func decode(_ bytes: [UInt8]) -> (String, [String: VariantCounts])? {
        guard let object = JSONValues.read(bytes) as? [String: Any],
              let who = object["incarnation"] as? String, let rows = object["counts"] as? [[String: Any]], rows.count <= 4096 else { return nil }
        var out: [String: VariantCounts] = [:]
        for row in rows {
            guard let key = row["key"] as? String, key.utf8.count <= 1024,
                  let requests = Self.count(row["requests"]), let errors = Self.count(row["errors"]), errors <= requests,
                  let list = row["buckets"] as? [Any], list.count <= RolloutLatency.boundsSeconds.count + 1 else { return nil }
            var buckets: [UInt64] = []
            for b in list {
                guard let n = Self.count(b) else { return nil }
                buckets.append(n)
            }
            out[key] = VariantCounts(requests: requests, errors: errors, buckets: buckets)
        }
        return (who, out)
    }

    /// A whole, non-negative count up to 2^53.
    private static func count(_ any: Any?) -> UInt64? {
        JSONValues.integer(any, in: 0...9_007_199_254_740_992).map { UInt64($0) }
    }
}
