// Resolving endpoint host names again, each every `resolveEveryMs` of its upstream, on a queue
// of its own: getaddrinfo blocks, so never on an event loop and never on the state queue. A
// changed answer goes to RuntimeState as one batch; a failed lookup keeps the last known
// addresses and is logged at most once a minute per name.
import Config
import Dispatch
import Synchronization

final class NameWatcher: @unchecked Sendable {
    private weak var state: RuntimeState?
    private let resolver: Resolver
    private let log: @Sendable (String) -> Void
    private let queue = DispatchQueue(label: "switchyard.resolver")
    private let stopped = Atomic<Bool>(false)

    // Confined to `queue`.
    /// When each name is due again (uptime ns).
    private var due: [String: UInt64] = [:]
    /// Failures in a row, and when the last one was logged, by name.
    private var failures: [String: (count: Int, loggedNs: UInt64)] = [:]

    /// With no names (or until the next one is due) the watcher still looks at the config this
    /// often, for names a reload or a command brought in.
    static let idleCheckNs: UInt64 = 1_000_000_000
    static let failureLogEveryNs: UInt64 = 60_000_000_000

    init(state: RuntimeState, resolver: @escaping Resolver, log: @escaping @Sendable (String) -> Void) {
        self.state = state
        self.resolver = resolver
        self.log = log
    }

    func start() { queue.async { self.tick() } }

    func stop() { stopped.store(true, ordering: .releasing) }

    private func tick() {
        guard !stopped.load(ordering: .acquiring), let state else { return }
        let endpoints = state.queue.sync { state.nameEndpoints }
        var now = DispatchTime.now().uptimeNanoseconds
        var next = now + Self.idleCheckNs
        var answers: [String: [ResolvedAddress]] = [:]
        for e in endpoints {
            let every = UInt64(e.everyMs) * 1_000_000
            // A name just brought in was resolved then: its first turn here is one period on.
            guard let at = due[e.written], at <= now else {
                let at = due[e.written] ?? now + every
                due[e.written] = at
                next = min(next, at)
                continue
            }
            switch resolver(e.host, e.port) {
            case .success(let found) where !found.isEmpty:
                answers[e.written] = found
                if let failed = failures.removeValue(forKey: e.written) {
                    log("resolver: \(e.written) resolves again after \(failed.count) failed lookup(s)")
                }
            case .success:
                failed(e, "no IPv4 or IPv6 address", now: now)
            case .failure(let failure):
                failed(e, failure.reason, now: now)
            }
            now = DispatchTime.now().uptimeNanoseconds
            due[e.written] = now + every
            next = min(next, now + every)
        }
        let current = Set(endpoints.map(\.written))
        due = due.filter { current.contains($0.key) }
        failures = failures.filter { current.contains($0.key) }
        if !answers.isEmpty {
            state.queue.async { [answers] in state.resolved(answers) }
        }
        let delay = next > now ? next - now : 0
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay))) { self.tick() }
    }

    private func failed(_ e: NameEndpoint, _ reason: String, now: UInt64) {
        var f = failures[e.written] ?? (0, 0)
        f.count += 1
        if f.count == 1 || now - f.loggedNs >= Self.failureLogEveryNs {
            f.loggedNs = now
            log("resolver: cannot resolve \(e.host) again (\(reason); \(f.count) failed lookup(s) in a row); "
                + "\(e.written) keeps its last known addresses")
        }
        failures[e.written] = f
    }
}
