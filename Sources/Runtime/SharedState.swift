// Runtime state shared by a fleet: in fleet mode the overrides live in a store every instance
// watches (etcd; the Fleet module), not in the state file. A commit writes through the store
// as one conditional transaction and is applied when the store hands its revision back, the
// same way every other instance applies it: each revision of the store is one snapshot swap.
import Config
import Dispatch
import Foundation
import Proxy

/// The store a fleet shares its overrides through. Its methods run on the state queue.
public protocol SharedStateStore: AnyObject, Sendable {
    /// Writes what differs between `current` and `next` (the objects a change touched) as one
    /// transaction that holds only if none of them changed since this instance read them;
    /// answers the store's revision of the write. Refuses with "changed meanwhile" when one did.
    func write(from current: Overrides, to next: Overrides) throws(ControlError) -> Int64
    /// Applies every revision that has arrived, waiting at most `timeout` seconds for
    /// `revision`; answers whether it was applied.
    func catchUp(to revision: Int64, timeout: Double) -> Bool
    /// The fleet as this instance sees it, for `show fleet` and /metrics; callable from any
    /// thread. `listingInstances` asks etcd for every instance's membership key.
    func report(listingInstances: Bool) -> FleetReport
    /// Stops watching and leaves the fleet (the membership lease is revoked).
    func stop()
    /// This instance drives the fleet's clock-stepped rollouts now (it holds the driver key).
    var isDriver: Bool { get }
    /// Counters summed over every instance that published them under `key` (rollout gates
    /// without Prometheus, guards). Called on the state queue.
    func fleetCounts(key: String) -> VariantCounts
    /// This instance's counters under `key`, published with the next round (they go out of the
    /// round when not set again for ten seconds). Called on the state queue.
    func publishCounts(key: String, _ counts: VariantCounts)
}

/// The keys counters are published under in a fleet.
public enum FleetCounterKey {
    /// A rollout variant's outcome counters.
    public static func variant(route: String, variant: String) -> String { "variant\u{0}" + route + "\u{0}" + variant }
    /// What a guard watches (an upstream's pool, a route's variant), by its name.
    public static func watch(_ name: String) -> String { "watch\u{0}" + name }
}

/// One instance of a fleet as its membership key says.
public struct FleetInstance: Sendable, Equatable {
    public var name: String
    public var appliedRevision: Int64
    public var version: String
    public var started: String
    public var listeners: [String]
    /// Behind the newest revision for longer than the fleet's straggler time.
    public var straggler: Bool

    public init(name: String, appliedRevision: Int64, version: String, started: String, listeners: [String], straggler: Bool) {
        self.name = name
        self.appliedRevision = appliedRevision
        self.version = version
        self.started = started
        self.listeners = listeners
        self.straggler = straggler
    }

    public var value: ControlValue {
        ["name": .string(name), "appliedRevision": .int(Int(appliedRevision)), "version": .string(version),
         "started": .string(started), "listeners": ControlValue(listeners), "straggler": .bool(straggler)]
    }
}

/// What `show fleet` lists and /metrics exports.
public struct FleetReport: Sendable {
    public var instance: String
    public var prefix: String
    public var endpoints: [String]
    /// The store answers (the watch is open).
    public var storeUp: Bool
    /// When it stopped answering (seconds since the epoch), and why; nil while it answers.
    public var unreachableSince: Double?
    public var lastError: String?
    /// The newest revision this instance has applied (progress notifications included).
    public var appliedRevision: Int64
    /// The revision of the newest change to the shared state this instance knows of.
    public var stateRevision: Int64
    /// Every live instance (nil when the store could not be asked).
    public var instances: [FleetInstance]?
    /// The instance that drives the rollouts (holds the driver key), when known.
    public var driver: String?

    public init(instance: String, prefix: String, endpoints: [String], storeUp: Bool, unreachableSince: Double?, lastError: String?,
                appliedRevision: Int64, stateRevision: Int64, instances: [FleetInstance]?) {
        self.instance = instance
        self.prefix = prefix
        self.endpoints = endpoints
        self.storeUp = storeUp
        self.unreachableSince = unreachableSince
        self.lastError = lastError
        self.appliedRevision = appliedRevision
        self.stateRevision = stateRevision
        self.instances = instances
    }

    public var value: ControlValue {
        var v: ControlValue = ["instance": .string(instance), "prefix": .string(prefix), "etcd": ControlValue(endpoints),
                               "storeUp": .bool(storeUp), "appliedRevision": .int(Int(appliedRevision)),
                               "stateRevision": .int(Int(stateRevision))]
        if let unreachableSince {
            v.set("unreachableSince", .string(Timestamp.string(ns: UInt64(max(0, unreachableSince * 1e9)))))
        }
        if let lastError { v.set("lastError", .string(lastError)) }
        if let driver { v.set("driver", .string(driver)) }
        if let instances {
            v.set("instances", .array(instances.map(\.value)))
            v.set("stragglers", ControlValue(instances.filter(\.straggler).map(\.name)))
        }
        return v
    }
}

extension RuntimeState {
    /// Whether this instance runs the clock-stepped automation (rollouts): always alone; in a
    /// fleet, only the instance elected driver, so a step is taken once, not once per instance.
    public var drivesAutomation: Bool { sharedStore?.isDriver ?? true }

    /// In fleet mode: writes what differs between the state last adopted from the store and
    /// `next` (a rollout's status changed in place, a commit's result), then applies it.
    func writeShared(_ store: any SharedStateStore, _ next: Overrides) throws(ControlError) -> (revision: Int64, applied: Bool) {
        let revision = try store.write(from: sharedBase, to: next)
        return (revision, store.catchUp(to: revision, timeout: 5))
    }

    /// Shares the overrides through `store` from now on (before `attach`): commits write to it,
    /// and what it hands back is applied with `adoptShared`.
    public func share(through store: any SharedStateStore) {
        queue.sync { sharedStore = store }
    }

    /// The overrides of the store at `revision`, settled on the config file like a state file's:
    /// one snapshot swap. Those this config cannot apply (names it does not have) are left out
    /// here and logged, and stay in the store for the instances whose config has them.
    public func adoptShared(_ shared: Overrides, revision: Int64) {
        dispatchPrecondition(condition: .onQueue(queue))
        let settled: Settled
        do { settled = try Self.settle(shared, on: fileConfig, version: version + 1, registry: registry, names: names) } catch {
            log("fleet revision \(revision): cannot build it (\(error.messages.joined(separator: "; "))); still serving version \(version)")
            return
        }
        let security: UpstreamSecurity
        do { (security, _) = try tlsMaterial.security(settled.config, registry: registry, file: source.name, credentials: upstreamCredentials) } catch {
            log("fleet revision \(revision): \(error.messages.joined(separator: "; ")); still serving version \(version)")
            return
        }
        publish(settled.snapshot, security: security)
        let droppedBefore = Set(sharedDropped)
        sharedDropped = settled.dropped
        for reason in settled.dropped where !droppedBefore.contains(reason) {
            log("fleet revision \(revision): not applied here: \(reason)")
        }
        overrides = settled.kept
        sharedBase = settled.kept
        config = settled.config
        configChanged()
        let result = CommitResult(version: settled.snapshot.version, saveFailure: nil, commitMs: 0, revision: revision)
        for observer in observers { observer.committed(result, []) }
    }
}
