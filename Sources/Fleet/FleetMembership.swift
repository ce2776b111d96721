// An instance's membership of its fleet: `PREFIX instances/NAME` under a lease of
// `leaseSeconds`, renewed a few times per lease and rewritten when the applied revision moves
// (so `show fleet` and `ctl --wait` see who has applied what). An instance that dies drops out
// when its lease runs out; one that stops cleanly revokes it at once.
//
// The same lease holds `PREFIX driver` for the instance elected to drive the clock-stepped
// rollouts and guards: created only where absent, so one instance holds it at a time. Every
// instance watches that key; when its holder dies the key goes with the lease, the deletion
// wakes the others at once, and the first to write it takes over (each also looks once a lease,
// should the watch be down).
import Config
import Etcd
import Foundation
import Proxy
import Reactor
import Runtime
import Synchronization

final class FleetMembership: @unchecked Sendable {
    let settings: Config.Fleet
    let client: EtcdClient
    let key: String
    private let version: String
    private var listeners: [String] = []
    let started = Timestamp.string(ns: Timestamp.nowNs())
    private let log: @Sendable (String) -> Void

    private let signal = Condition()
    private var stopped = false              // under signal
    private var applied: Int64 = 0           // under signal
    private var written: Int64 = -1          // under signal
    private var lease: Int64 = 0             // under signal
    /// The driver key changed (the watch saw it): look again now.
    private var electNow = false             // under signal
    private var driverWatch: EtcdWatch?      // under signal
    /// Whether this instance holds the driver key (read by the state queue).
    private let driving = Atomic<Bool>(false)
    var isDriver: Bool { driving.load(ordering: .relaxed) }
    /// The lease the instance's keys live under now (0 while none is granted).
    var currentLease: Int64 {
        signal.lock()
        defer { signal.unlock() }
        return lease
    }
    let driverKey: String
    /// When the newest state revision was first seen here, for stragglers.
    private let stateSeen = Mutex<(revision: Int64, at: Double)>((0, Condition.now()))

    init(settings: Config.Fleet, client: EtcdClient, version: String, log: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.client = client
        self.key = settings.prefix + "instances/" + settings.instance
        self.driverKey = settings.prefix + "driver"
        self.version = version
        self.log = log
    }

    /// Joins at once (lease and key written before this returns, so an instance is listed
    /// from the moment it says it listens, and `ctl --wait` waits for it), then keeps the key.
    func start(listeners: [String]) {
        self.listeners = listeners
        if let granted = try? client.grantLease(ttl: Int64(settings.leaseSeconds)).id {
            let revision = signal.withLock { applied }
            if (try? client.put(key, entry(revision), lease: granted)) != nil {
                signal.withLock {
                    lease = granted
                    written = revision
                }
            } else {
                try? client.revoke(lease: granted)
            }
        }
        _ = LoopThread.start { [self] in run() }
        _ = LoopThread.start { [self] in watchDriver() }
    }

    /// Stops renewing and revokes the lease now, so the instance leaves the list at once.
    func stop() {
        driving.store(false, ordering: .relaxed)
        signal.lock()
        stopped = true
        let held = lease
        lease = 0
        let w = driverWatch
        signal.broadcast()
        signal.unlock()
        w?.cancel()
        if held != 0 { try? client.revoke(lease: held) }
    }

    /// The state queue applied `revision`; the key is rewritten soon.
    func applied(revision: Int64, stateRevision: Int64) {
        stateSeen.withLock { if stateRevision > $0.revision { $0 = (stateRevision, Condition.now()) } }
        signal.lock()
        applied = revision
        signal.broadcast()
        signal.unlock()
    }

    private func run() {
        var failures = 0
        while true {
            do throws(EtcdError) {
                signal.lock()
                var lease = self.lease
                signal.unlock()
                if lease == 0 {
                    lease = try client.grantLease(ttl: Int64(settings.leaseSeconds)).id
                    signal.lock()
                    if stopped {
                        signal.unlock()
                        try? client.revoke(lease: lease)
                        return
                    }
                    self.lease = lease
                    written = -1
                    signal.unlock()
                }
                var renewAt = Condition.now() + Double(settings.leaseSeconds) / 3
                var electAt = Condition.now()
                while true {
                    signal.lock()
                    let now = electNow
                    electNow = false
                    signal.unlock()
                    if now || Condition.now() >= electAt {
                        try elect(lease: lease)
                        electAt = Condition.now() + Double(settings.leaseSeconds)
                    }
                    let wake = min(renewAt, electAt)
                    signal.lock()
                    while !stopped && !electNow && applied == written && Condition.now() < wake { signal.wait(until: wake) }
                    let stop = stopped
                    let revision = applied
                    let dirty = revision != written
                    signal.unlock()
                    if stop { return }
                    if dirty {
                        try client.put(key, entry(revision), lease: lease)
                        signal.lock()
                        written = revision
                        signal.unlock()
                    }
                    if Condition.now() >= renewAt {
                        if try client.keepAlive(lease: lease) == 0 {
                            signal.lock()
                            if self.lease == lease { self.lease = 0 }
                            signal.unlock()
                            throw EtcdError(.server, "the membership lease expired")
                        }
                        renewAt = Condition.now() + Double(settings.leaseSeconds) / 3
                    }
                    failures = 0
                }
            } catch {
                driving.store(false, ordering: .relaxed)
                failures += 1
                if failures == 1 { log("fleet: cannot keep \(key) in etcd: \(error.description)") }
                let pause = min(2.0, 0.1 * Double(failures)) * Double.random(in: 0.5...1)
                signal.lock()
                let until = Condition.now() + pause
                while !stopped && Condition.now() < until { signal.wait(until: until) }
                let stop = stopped
                signal.unlock()
                if stop { return }
            }
        }
    }

    /// Watches the driver key and wakes the membership thread when it changes (its holder's
    /// lease ran out, or it was revoked): the others need not poll to take over.
    private func watchDriver() {
        var failures = 0
        while !isStopped {
            do throws(EtcdError) {
                let at = try client.range(driverKey, prefix: false).revision
                wakeToElect()
                let watch = try EtcdWatch(client, prefix: driverKey, startRevision: at + 1, idleTimeout: 660)
                defer { watch.close() }
                signal.lock()
                driverWatch = watch
                let stop = stopped
                signal.unlock()
                if stop { return }
                while true {
                    if case .changes = try watch.next() { wakeToElect() }
                    failures = 0
                }
            } catch {
                failures += 1
                let pause = min(5.0, 0.1 * Double(failures)) * Double.random(in: 0.5...1)
                signal.lock()
                driverWatch = nil
                let until = Condition.now() + pause
                while !stopped && Condition.now() < until { signal.wait(until: until) }
                signal.unlock()
            }
        }
    }

    private var isStopped: Bool { signal.withLock { stopped } }

    private func wakeToElect() {
        signal.lock()
        electNow = true
        signal.broadcast()
        signal.unlock()
    }

    /// Takes the driver key if nobody holds it, or checks that this instance still does.
    private func elect(lease: Int64) throws(EtcdError) {
        let mine = Array("{\"instance\":\"\(settings.instance)\",\"lease\":\"\(lease)\"}".utf8)
        let was = driving.load(ordering: .relaxed)
        let held: Bool
        if was {
            held = try client.txn([EtcdCompare(key: driverKey, .value(mine))], success: []).succeeded
        } else {
            held = try client.txn([EtcdCompare(key: driverKey, .modRevision(0))], success: [.put(driverKey, mine, lease: lease)]).succeeded
        }
        driving.store(held, ordering: .relaxed)
        if held != was { log(held ? "fleet: \(settings.instance) drives the fleet's rollouts" : "fleet: \(settings.instance) no longer drives the rollouts") }
    }

    private func entry(_ revision: Int64) -> [UInt8] {
        let object: [String: Any] = ["instance": settings.instance, "appliedRevision": revision, "version": version,
                                     "started": started, "listeners": listeners]
        return JSONValues.write(object)
    }

    /// Every live instance as its key says, stragglers marked; nil when etcd cannot be asked.
    func instances(stateRevision: Int64) -> [FleetInstance]? {
        guard let read = try? client.range(settings.prefix + "instances/") else { return nil }
        let seen = stateSeen.withLock { $0 }
        let late = seen.revision == stateRevision && (Condition.now() - seen.at) * 1000 > Double(settings.stragglerMs)
        return read.kvs.compactMap { kv -> FleetInstance? in
            guard let object = JSONValues.read(kv.value) as? [String: Any] else { return nil }
            let name = object["instance"] as? String ?? String(kv.key.dropFirst(settings.prefix.count + "instances/".count))
            let applied = JSONValues.integer(object["appliedRevision"], in: 0...Int64.max) ?? 0
            return FleetInstance(name: name, appliedRevision: applied, version: object["version"] as? String ?? "",
                                 started: object["started"] as? String ?? "", listeners: object["listeners"] as? [String] ?? [],
                                 straggler: applied < stateRevision && late)
        }
    }

    /// The instance that holds the driver key; nil when none does or etcd cannot be asked.
    func driver() -> String? {
        guard let kv = (try? client.range(driverKey, prefix: false))?.kvs.first,
              let object = JSONValues.read(kv.value) as? [String: Any] else { return nil }
        return object["instance"] as? String
    }
}
