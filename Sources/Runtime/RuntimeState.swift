// What a running proxy serves: the config file, the runtime overrides, and the effective config
// built from both; each committed change is one snapshot publish. Confined to its queue.
import Config
import Dispatch
import Foundation
import Proxy
import Routing
import TLS

/// Where the config comes from, for start and reload.
public struct ConfigSource: Sendable {
    /// The file path, or a label such as `<demo>`.
    public var name: String
    public var load: @Sendable () throws(ConfigError) -> ConfigLoadResult

    public init(name: String, load: @escaping @Sendable () throws(ConfigError) -> ConfigLoadResult) {
        self.name = name
        self.load = load
    }

    public static func file(_ path: String) -> ConfigSource {
        ConfigSource(name: path) { () throws(ConfigError) in try ConfigLoader.load(path: path) }
    }
}

/// A refused command or change: `message` becomes the reply's `error`, `details` more members.
public struct ControlError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var details: ControlValue

    public init(_ message: String, details: ControlValue = [:]) {
        self.message = message
        self.details = details
    }

    public var description: String { message }
}

/// Something that acts on the runtime state like an operator does (a rollout runner, a guard
/// board): told, on the state queue, when the state starts publishing to a server and after each
/// commit (its own included).
public protocol RuntimeObserver: AnyObject, Sendable {
    func attached(_ state: RuntimeState)
    func committed(_ result: RuntimeState.CommitResult, _ changes: [RuntimeChange])
}

extension RuntimeObserver {
    public func attached(_ state: RuntimeState) {}
    public func committed(_ result: RuntimeState.CommitResult, _ changes: [RuntimeChange]) {}
}

public final class RuntimeState: @unchecked Sendable {
    /// The one queue every read and change of this state runs on.
    public let queue = DispatchQueue(label: "switchyard.control.state")
    public let source: ConfigSource
    public let registry: EndpointRegistry
    /// The config file as last loaded.
    public private(set) var fileConfig: Config
    /// Runtime overrides in effect (only those that apply to `fileConfig`).
    public package(set) var overrides: Overrides
    /// `overrides` applied to `fileConfig`: what the snapshot was built from.
    public internal(set) var config: Config
    /// The snapshot last published (or, before `attach`, to start with).
    public private(set) var snapshot: Snapshot
    public let stateFile: StateFile?
    public private(set) var server: ProxyServer?
    /// Why the last save of the state file failed; nil when the file is current.
    public private(set) var saveFailure: String?
    /// Reloads applied and refused, for /metrics.
    package let log: @Sendable (String) -> Void
    /// Upstream TLS client contexts (kept across changes), and what the last publish used.
    let tlsMaterial = TLSMaterial()
    public private(set) var security: UpstreamSecurity
    /// What the pools prove themselves with (signing credentials, tokens), obtained at start and
    /// at each reload and kept across runtime changes; renewed by `credentials` as they expire.
    private(set) var upstreamCredentials: UpstreamCredentials
    public let credentials: CredentialRefresher
    /// TLS servers of the listeners, by listening address.
    public private(set) var listenerTLS: [String: TLSServer]
    /// Reloads applied and refused (from SIGHUP and from `ctl reload`), for /metrics.
    public let reloads = ReloadCounts()
    /// Where release events are posted (the config's `hooks`, Hooks.swift).
    public let hooks: Hooks
    /// Commits and reloads, newest last, for the status page.
    package internal(set) var recentEvents = RecentEvents()
    /// The always-valid p-values of each experiment's goals between looks (ExperimentReport).
    package let experimentLooks = ExperimentLooks()
    /// Endpoint host names: how they are resolved, what they resolved to, which ones `config`
    /// has, and what resolves them again (RuntimeStateNames.swift).
    let resolver: Resolver
    public internal(set) var names = ResolvedNames(required: true)
    public internal(set) var nameEndpoints: [NameEndpoint] = []
    var watcher: NameWatcher?
    /// What acts on this state like an operator (rollouts, guards: the Rollouts module), told
    /// when publishing starts and after each commit; registered by whoever wires the process.
    private(set) var observers: [any RuntimeObserver] = []
    /// In fleet mode, the store the overrides are shared through (SharedState.swift).
    public internal(set) var sharedStore: (any SharedStateStore)?
    /// Shared overrides this config could not apply, as last logged.
    var sharedDropped: [String] = []
    /// The overrides as last adopted from the store: what a write is the difference from
    /// (`overrides` itself may have been changed in place since, by a rollout's step).
    var sharedBase = Overrides()
    /// Around each reload, for the service manager (sd_notify RELOADING, then READY).
    public var reloadWillStart: @Sendable () -> Void = {}
    public var reloadDidEnd: @Sendable () -> Void = {}

    public var version: UInt64 { snapshot.version }

    /// Loads the state file (if the config names one), resolves endpoint host names with
    /// `resolver`, applies the overrides and builds the first snapshot. Throws when the config
    /// itself cannot be built (a host name without any address included), or when another user
    /// can write the state file or its directory.
    public init(loaded: ConfigLoadResult, source: ConfigSource, registry: EndpointRegistry = EndpointRegistry(),
                resolver: @escaping Resolver = SystemResolver.resolve,
                log: @escaping @Sendable (String) -> Void) throws(ConfigError) {
        self.source = source
        self.registry = registry
        self.resolver = resolver
        self.log = log
        credentials = CredentialRefresher(log: log)
        hooks = Hooks(loaded.config.hooks, instance: loaded.config.instanceName, log: log)
        fileConfig = loaded.config
        // In fleet mode the overrides live in etcd: the state file is neither read nor written.
        stateFile = loaded.config.fleet == nil ? loaded.config.control?.stateFile.map(StateFile.init(path:)) : nil
        var saved = Overrides()
        if let stateFile, let problem = stateFile.trustProblem(serviceUID: loaded.config.serviceAccount?.uid) {
            throw ConfigError(messages: ["\(source.name): control.stateFile: \(problem); the state file is as trusted as "
                + "the control socket: make the directory writable by this user only, or choose another stateFile"])
        }
        if let stateFile {
            switch stateFile.load(serviceUID: loaded.config.serviceAccount?.uid) {
            case .missing: break
            case .refused(let problem):
                throw ConfigError(messages: ["\(source.name): control.stateFile: \(problem); the state file is as trusted as "
                    + "the control socket: make it this user's own, or choose another stateFile"])
            case .loaded(let overrides): saved = overrides
            case .corrupt(let reason, let movedTo):
                log("state file \(stateFile.path) is corrupt (\(reason)); "
                    + (movedTo.map { "moved to \($0)" } ?? "could not move it aside")
                    + "; starting from the config's values")
            }
        }
        names.resolveMissing(loaded.config.nameEndpoints + saved.applied(to: loaded.config).config.nameEndpoints, with: resolver)
        let settled: Settled
        do { settled = try Self.settle(saved, on: loaded.config, version: 1, registry: registry, names: names) } catch {
            // What the file parsed into does not build (a host name without an address):
            // still a bad config, named by its file.
            throw ConfigError(messages: error.messages.map { "\(source.name): \($0)" })
        }
        overrides = settled.kept
        config = settled.config
        snapshot = settled.snapshot
        listenerTLS = try TLSMaterial.listeners(loaded.config, workers: ProxyServer.workerCount(for: loaded.config.workers),
                                                file: source.name)
        (security, upstreamCredentials) = try tlsMaterial.security(settled.config, registry: registry, file: source.name)
        configChanged()
        releaseEndpoints()
        for reason in settled.dropped { log("state file: dropped override \(reason)") }
        if !settled.dropped.isEmpty { saveFailure = persist() }
        if !overrides.isEmpty {
            log("applied runtime overrides from \(stateFile?.path ?? "memory"): "
                + describe(overrides).map(\.summary).joined(separator: "; "))
        }
        observers.append(HookFlips(hooks))
    }

    /// Starts publishing to `server` (built from `snapshot`).
    public func attach(_ server: ProxyServer) {
        queue.sync {
            self.server = server
            server.setListenerTLS(listenerTLS)
            server.publish(snapshot, security: security)
            credentials.replace(upstreamCredentials.expiring)
            for observer in observers { observer.attached(self) }
        }
    }

    /// Adds `observer`; one added after `attach` is told at once.
    public func observe(_ observer: any RuntimeObserver) {
        queue.sync {
            observers.append(observer)
            if server != nil { observer.attached(self) }
        }
    }

    // MARK: Changes

    public struct CommitResult: Sendable {
        public var version: UInt64
        /// Set when the state file could not be written (the change is live regardless).
        public var saveFailure: String?
        /// Milliseconds from taking the change to publishing it (state file save included).
        public var commitMs: Double = 0
        /// In fleet mode, the store's revision of the change.
        public var revision: Int64? = nil
        /// In fleet mode, false when the change was written but this instance had not applied
        /// it yet when the reply went.
        public var appliedHere = true
    }

    /// Applies `changes` as one snapshot swap, then saves the state file.
    public func commit(_ changes: [RuntimeChange]) throws(ControlError) -> CommitResult {
        dispatchPrecondition(condition: .onQueue(queue))
        let started = DispatchTime.now().uptimeNanoseconds
        var next = overrides
        for change in changes { next.apply(change) }
        let applied = next.applied(to: fileConfig)
        if let first = applied.dropped.first {
            throw ControlError("refused, nothing changed: \(first)")
        }
        names.resolveMissing(applied.config.nameEndpoints, with: resolver)
        let built: Snapshot
        let secured: UpstreamSecurity
        do {
            built = try SnapshotBuilder.build(applied.config, version: version + 1, registry: registry, names: names)
            (secured, _) = try tlsMaterial.security(applied.config, registry: registry, file: source.name,
                                                    credentials: upstreamCredentials)
        } catch {
            throw ControlError("refused, nothing changed: " + error.messages.joined(separator: "; "),
                               details: ["errors": ControlValue(error.messages)])
        }
        if let sharedStore {
            // Written as one transaction, applied when the store hands the revision back.
            let (revision, caughtUp) = try writeShared(sharedStore, applied.kept)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            return CommitResult(version: version, saveFailure: nil, commitMs: ms, revision: revision, appliedHere: caughtUp)
        }
        publish(built, security: secured)
        overrides = applied.kept
        config = applied.config
        configChanged()
        saveFailure = persist()
        if let saveFailure { log("cannot save the runtime state: \(saveFailure)") }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        let result = CommitResult(version: built.version, saveFailure: saveFailure, commitMs: ms)
        recentEvents.record("change", changes.map(\.summary).joined(separator: "; ") + " (version \(built.version))")
        for observer in observers { observer.committed(result, changes) }
        return result
    }

    func publish(_ built: Snapshot, security secured: UpstreamSecurity) {
        let previous = snapshot
        snapshot = built
        security = secured
        server?.publish(built, security: secured)
        // A change that keeps every endpoint (weights, mirrors, a flip) has nothing to give back,
        // unless the last release left something or a build since took an id.
        if let held = releasedHeldCount, registry.heldCount == held, previous.hasSameEndpoints(as: built) { return }
        releaseEndpoints()
    }

    /// Endpoint ids the current snapshot no longer uses go back, once nothing is in flight on
    /// them (those are retried at the next publish); ids handed out for snapshots built and
    /// never published (refused changes, settling) go too.
    func releaseEndpoints() {
        let inFlight = server?.metrics.inFlightByEndpoint() ?? [:]
        let keep = Set(snapshot.endpointIDs)
        registry.release(keeping: keep) { id in inFlight[id] ?? 0 }
        let seriesReleased = server?.metrics.releaseEndpointSeries(keeping: snapshot) ?? true
        releasedHeldCount = seriesReleased && registry.heldCount == keep.count ? keep.count : nil
    }

    /// The registry's ids after the last release, when it left no endpoint id or series the
    /// snapshot does not have; nil when it left some (in flight).
    private var releasedHeldCount: Int?

    /// Writes the overrides to the state file; the failure, if any.
    package func persist() -> String? {
        if let sharedStore {
            do throws(ControlError) { _ = try writeShared(sharedStore, overrides) } catch { return error.message }
            return nil
        }
        guard let stateFile else { return nil }
        do throws(StateFile.SaveError) {
            try stateFile.save(overrides)
            return nil
        } catch {
            return error.description
        }
    }

    /// Replaces the file config (reload): see RuntimeStateReload.swift.
    func adopt(file: Config, settled: Settled, security secured: UpstreamSecurity, credentials obtained: UpstreamCredentials,
               listeners: [String: TLSServer]) {
        fileConfig = file
        hooks.configure(file.hooks)
        upstreamCredentials = obtained
        if server != nil { credentials.replace(obtained.expiring) }
        overrides = settled.kept
        config = settled.config
        listenerTLS = listeners
        server?.setListenerTLS(listeners)
        publish(settled.snapshot, security: secured)
        configChanged()
    }

    // MARK: Settling overrides on a config

    struct Settled {
        var config: Config
        var kept: Overrides
        var dropped: [String]
        var snapshot: Snapshot
    }

    /// Applies `overrides` to `file` and builds the snapshot. When the whole set does not build
    /// (the config changed under it), keeps each override only if the config still builds with
    /// it, and reports the rest.
    static func settle(_ overrides: Overrides, on file: Config, version: UInt64,
                       registry: EndpointRegistry, names: ResolvedNames = ResolvedNames()) throws(ConfigError) -> Settled {
        let applied = overrides.applied(to: file)
        if let built = try? SnapshotBuilder.build(applied.config, version: version, registry: registry, names: names) {
            return Settled(config: applied.config, kept: applied.kept, dropped: applied.dropped, snapshot: built)
        }
        var kept = Overrides()
        kept.rollouts = applied.kept.rollouts
        kept.guards = applied.kept.guards
        var dropped = applied.dropped
        for single in applied.kept.singles() {
            var trial = kept
            trial.merge(single)
            let candidate = trial.applied(to: file)
            do {
                _ = try SnapshotBuilder.build(candidate.config, version: version, registry: registry, names: names)
                kept = trial
            } catch {
                dropped.append("\(single.summaryLine): \(error.messages.first ?? "does not build")")
            }
        }
        let final = kept.applied(to: file)
        let built = try SnapshotBuilder.build(final.config, version: version, registry: registry, names: names)
        return Settled(config: final.config, kept: final.kept, dropped: dropped, snapshot: built)
    }
}

extension Overrides {
    /// Each override on its own: one live color, one variant weight, one mirror, one pool edit.
    func singles() -> [Overrides] {
        var out: [Overrides] = []
        for (name, color) in live.sorted(by: { $0.key < $1.key }) {
            var o = Overrides()
            o.live[name] = color
            out.append(o)
        }
        for (route, variants) in weights.sorted(by: { $0.key < $1.key }) {
            var o = Overrides()
            o.weights[route] = variants
            out.append(o)
        }
        for (route, shadows) in mirrors.sorted(by: { $0.key < $1.key }) {
            for (upstream, percent) in shadows.sorted(by: { $0.key < $1.key }) {
                var o = Overrides()
                o.mirrors[route] = [upstream: percent]
                out.append(o)
            }
        }
        for (key, changes) in endpoints.sorted(by: { $0.key < $1.key }) {
            var o = Overrides()
            o.endpoints[key] = changes
            out.append(o)
        }
        return out
    }

    mutating func merge(_ other: Overrides) {
        live.merge(other.live) { $1 }
        for (route, variants) in other.weights { weights[route, default: [:]].merge(variants) { $1 } }
        for (route, shadows) in other.mirrors { mirrors[route, default: [:]].merge(shadows) { $1 } }
        endpoints.merge(other.endpoints) { $1 }
    }

    /// A short description of a single override (see `singles`).
    var summaryLine: String {
        if let (name, color) = live.first { return "live \(name) \(color)" }
        if let (route, variants) = weights.first {
            return "weights \(route) " + variants.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        if let (route, shadows) = mirrors.first, let (upstream, percent) = shadows.first {
            return "mirror \(route) \(upstream) \(ControlValue.format(percent))"
        }
        if let (key, _) = endpoints.first { return "endpoints \(key)" }
        return "(none)"
    }
}
