// Fleet mode's shared state: this instance's view of the overrides in etcd and the watch that
// keeps it current. A background thread reads the state prefix at revision R in one range,
// then watches from R + 1; every message goes to an inbox the state queue drains in order, so
// each revision is one snapshot swap. After an error (etcd away, a compaction, a revision that
// goes backwards, a stream that ends) it reconnects with backoff and jitter and resyncs with a
// full read; meanwhile the last applied state keeps serving.
import Config
import Etcd
import Foundation
import Glibc
import Proxy
import Reactor
import Runtime
import Synchronization

public final class FleetStore: SharedStateStore, @unchecked Sendable {
    public let settings: Config.Fleet
    let client: EtcdClient
    let statePrefix: String
    private unowned let state: RuntimeState
    let membership: FleetMembership
    let counters: FleetCounters

    /// What the watch thread hands to the state queue.
    enum Message {
        /// Every state key at a revision (a start or a resync).
        case snapshot(revision: Int64, [EtcdKeyValue])
        case changes(revision: Int64, [EtcdEvent])
        case progress(revision: Int64)
    }

    private let inbox = Condition()
    private var pending: [Message] = []          // under inbox
    private var stopped = false                  // under inbox
    private var watch: EtcdWatch?                // under inbox

    // Confined to the state queue.
    private var mirror: [String: EtcdKeyValue] = [:]
    private var applied: Int64 = 0

    private struct Status {
        var up = false
        /// Wall-clock seconds when etcd stopped answering.
        var since: Double?
        var lastError: String?
        var appliedRevision: Int64 = 0
        var stateRevision: Int64 = 0
    }
    private let status = Mutex(Status())

    /// How long the watch may stay silent: etcd sends progress notifications every ten
    /// minutes by default, so a quiet stream is not a dead one before that.
    let watchIdleSeconds: Double

    public init(settings: Config.Fleet, state: RuntimeState, version: String, watchIdleSeconds: Double = 660) {
        self.settings = settings
        self.state = state
        self.statePrefix = settings.prefix + "state/"
        self.watchIdleSeconds = watchIdleSeconds
        client = EtcdClient(EtcdClient.Settings(endpoints: settings.endpoints, tls: settings.tls,
                                                username: settings.username.map { String(decoding: $0.bytes, as: UTF8.self) },
                                                password: settings.password.map { String(decoding: $0.bytes, as: UTF8.self) }))
        membership = FleetMembership(settings: settings, client: client, version: version, log: state.log)
        counters = FleetCounters(settings: settings, client: client, state: state, membership: membership)
    }

    /// Reads the shared state once, on the caller's thread, so the proxy starts with it when
    /// etcd answers within `initialTimeout`; `start` then watches from there.
    public func readInitial(timeout initialTimeout: Double = 5) {
        state.share(through: self)
        let deadline = Condition.now() + initialTimeout
        var first: (revision: Int64, kvs: [EtcdKeyValue])?
        while first == nil && Condition.now() < deadline {
            do throws(EtcdError) { first = try client.range(statePrefix) } catch {
                markDown(error.description)
                usleep(100_000)
            }
        }
        if let first {
            enqueue(.snapshot(revision: first.revision, first.kvs))
            state.queue.sync { drain() }
        } else {
            state.log("fleet: etcd (\(settings.endpoints.map(\.authority).joined(separator: ", "))) did not answer within \(initialTimeout)s; "
                + "serving the config file's state until it does")
        }
        initialRevision = first?.revision
    }

    private var initialRevision: Int64?

    /// Starts the watch and the membership threads (after a privilege drop: no thread runs
    /// before it). `listeners` go into the membership key.
    public func start(listeners: [String]) {
        startWatching()
        membership.start(listeners: listeners)
        counters.start()
    }

    /// Only the watch: for `ctl --etcd`, which changes the fleet's state without being one of
    /// its instances (no membership key, never the driver).
    public func startWatching() {
        let from = initialRevision
        _ = LoopThread.start { [self] in watchLoop(resumeAfter: from) }
    }

    /// Whether the initial read got an answer.
    public var readSucceeded: Bool { initialRevision != nil }

    public func fleetCounts(key: String) -> VariantCounts { counters.counts(key: key) }

    public func publishCounts(key: String, _ counts: VariantCounts) { counters.set(key, counts) }

    public var isDriver: Bool { membership.isDriver }

    public func stop() {
        inbox.lock()
        stopped = true
        let w = watch
        inbox.broadcast()
        inbox.unlock()
        w?.cancel()
        counters.stop()
        membership.stop()
    }

    private var isStopped: Bool {
        inbox.lock()
        defer { inbox.unlock() }
        return stopped
    }

    // MARK: the watch thread

    private func watchLoop(resumeAfter first: Int64?) {
        var resume = first
        var failures = 0
        while !isStopped {
            do throws(EtcdError) {
                var revision: Int64
                if let r = resume {
                    revision = r
                    resume = nil
                } else {
                    let read = try client.range(statePrefix)
                    revision = read.revision
                    enqueue(.snapshot(revision: read.revision, read.kvs))
                }
                let w = try EtcdWatch(client, prefix: statePrefix, startRevision: revision + 1, idleTimeout: watchIdleSeconds)
                inbox.lock()
                watch = w
                let stop = stopped
                inbox.unlock()
                defer {
                    inbox.lock()
                    watch = nil
                    inbox.unlock()
                    w.close()
                }
                if stop { return }
                while true {
                    let message = try w.next()
                    markUp()
                    failures = 0
                    switch message {
                    case .created: continue
                    case .changes(let r, let events):
                        guard r > revision else { throw EtcdError(.malformed, "revision \(r) after \(revision): the store went backwards") }
                        revision = r
                        enqueue(.changes(revision: r, events))
                    case .progress(let r):
                        // A restored cluster starts again from an older revision.
                        guard r >= revision else { throw EtcdError(.malformed, "revision \(r) after \(revision): the store went backwards") }
                        revision = r
                        enqueue(.progress(revision: r))
                    }
                }
            } catch {
                if isStopped { return }
                markDown(error.description)
                failures += 1
                // The first retry at once (a member died: the next one answers); then backoff
                // with jitter, up to 5 s, so a fleet does not reconnect in step.
                if failures > 1 {
                    let base = min(5.0, 0.05 * pow(2.0, Double(min(failures, 10))))
                    wait(seconds: base / 2 + Double.random(in: 0...(base / 2)))
                }
            }
        }
    }

    private func wait(seconds: Double) {
        inbox.lock()
        let until = Condition.now() + seconds
        while !stopped && Condition.now() < until { inbox.wait(until: until) }
        inbox.unlock()
    }

    private func enqueue(_ message: Message) {
        inbox.lock()
        pending.append(message)
        inbox.broadcast()
        inbox.unlock()
        state.queue.async { [self] in drain() }
    }

    private func markUp() {
        status.withLock {
            if !$0.up { $0.up = true; $0.since = nil }
        }
    }

    private func markDown(_ reason: String) {
        let first = status.withLock { s -> Bool in
            let was = s.up || s.since == nil
            if was { s.since = Double(Timestamp.nowNs()) / 1e9 }
            s.up = false
            s.lastError = reason
            return was
        }
        if first { state.log("fleet: etcd unreachable: \(reason); serving revision \(appliedRevision) until it answers") }
    }

    var appliedRevision: Int64 { status.withLock { $0.appliedRevision } }

    // MARK: the state queue

    /// Applies every message that has arrived, in order: each revision one snapshot swap.
    func drain() {
        dispatchPrecondition(condition: .onQueue(state.queue))
        inbox.lock()
        let messages = pending
        pending.removeAll()
        inbox.unlock()
        for message in messages { apply(message) }
    }

    private func apply(_ message: Message) {
        switch message {
        case .progress(let r):
            applied = max(applied, r)
        case .snapshot(let r, let kvs):
            var next: [String: EtcdKeyValue] = [:]
            for kv in kvs { next[kv.key] = kv }
            if r < applied { state.log("fleet: etcd is at revision \(r), behind the \(applied) applied here (a restored cluster?); resynced") }
            let changed = next != mirror
            mirror = next
            applied = r
            if changed { adopt(revision: r) }
        case .changes(let r, let events):
            guard r > applied || applied == 0 else { return }   // already read in a resync
            for e in events {
                switch e.kind {
                case .put: mirror[e.kv.key] = e.kv
                case .delete: mirror.removeValue(forKey: e.kv.key)
                }
            }
            applied = r
            adopt(revision: r)
        }
        let stateRevision = mirror.values.map(\.modRevision).max() ?? 0
        status.withLock {
            $0.appliedRevision = applied
            $0.stateRevision = stateRevision
        }
        membership.applied(revision: applied, stateRevision: stateRevision)
    }

    private func adopt(revision: Int64) {
        let (overrides, problems) = FleetKeys.overrides(mirror, prefix: settings.prefix)
        for p in problems { state.log("fleet revision \(revision): ignored \(p)") }
        state.adoptShared(overrides, revision: revision)
    }

    public func write(from current: Overrides, to next: Overrides) throws(ControlError) -> Int64 {
        dispatchPrecondition(condition: .onQueue(state.queue))
        let changes = FleetKeys.diff(from: current, to: next, prefix: settings.prefix)
        guard !changes.isEmpty else { return applied }
        // Each key must still be at the revision this instance read it at (0: absent).
        let compares = changes.map { EtcdCompare(key: $0.key, .modRevision(mirror[$0.key]?.modRevision ?? 0)) }
        let ops = changes.map { c in c.value.map { EtcdOp.put(c.key, $0, lease: 0) } ?? EtcdOp.delete(c.key, prefix: false) }
        let result: (succeeded: Bool, revision: Int64)
        do throws(EtcdError) { result = try client.txn(compares, success: ops) } catch {
            throw ControlError("refused, nothing changed: the fleet's etcd cannot be written (\(error.description)); "
                + "this instance keeps serving revision \(applied)", details: ["fleet": ["storeUp": false]])
        }
        guard result.succeeded else {
            let names = changes.map { String($0.key.dropFirst(statePrefix.count)) }
            throw ControlError("refused, nothing changed: changed meanwhile (\(names.joined(separator: ", ")) changed in etcd since revision "
                + "\(applied), which this instance had applied; the store is at \(result.revision)); retry",
                details: ["conflict": ControlValue(names), "revision": .int(Int(result.revision))])
        }
        return result.revision
    }

    public func catchUp(to revision: Int64, timeout: Double) -> Bool {
        dispatchPrecondition(condition: .onQueue(state.queue))
        let deadline = Condition.now() + timeout
        while applied < revision {
            inbox.lock()
            while !pending.contains(where: { $0.revision >= revision }) && !stopped && Condition.now() < deadline {
                inbox.wait(until: deadline)
            }
            inbox.unlock()
            drain()
            if Condition.now() >= deadline || isStopped { break }
        }
        return applied >= revision
    }

    public func report(listingInstances: Bool) -> FleetReport {
        let s = status.withLock { $0 }
        var report = FleetReport(instance: settings.instance, prefix: settings.prefix, endpoints: settings.endpoints.map(\.authority),
                           storeUp: s.up, unreachableSince: s.up ? nil : s.since,
                           lastError: s.up ? nil : s.lastError, appliedRevision: s.appliedRevision, stateRevision: s.stateRevision,
                           instances: listingInstances ? membership.instances(stateRevision: s.stateRevision) : nil)
        if listingInstances { report.driver = membership.driver() } else if isDriver { report.driver = settings.instance }
        return report
    }
}

extension FleetStore.Message {
    var revision: Int64 {
        switch self {
        case .snapshot(let r, _), .changes(let r, _), .progress(let r): return r
        }
    }
}
