// Reload (`reload`, SIGHUP): re-read, validate, re-apply overrides, build, open/close listeners,
// swap; anything invalid refuses the whole reload and the running config keeps serving.
import Config
import Dispatch
import Proxy
import Reactor
import TLS

extension RuntimeState {
    public struct ReloadResult: Sendable {
        public var version: UInt64
        public var listenersOpened: [String]
        public var listenersClosed: [String]
        /// Overrides whose names the new config no longer has.
        public var droppedOverrides: [String]
        public var warnings: [String]
        /// Settings that changed in the file but only take effect at the next start.
        public var restartNeeded: [String]
        public var saveFailure: String?
        /// File changes a runtime override keeps from taking effect, one line per key.
        public var masked: [String] = []

        public var value: ControlValue {
            var v: ControlValue = [
                "version": ControlValue(version),
                "listenersOpened": ControlValue(listenersOpened),
                "listenersClosed": ControlValue(listenersClosed),
                "droppedOverrides": ControlValue(droppedOverrides),
                "warnings": ControlValue(warnings),
                "restartNeeded": ControlValue(restartNeeded),
                "maskedByRuntime": ControlValue(masked),
            ]
            if let saveFailure { v.set("stateFileError", .string(saveFailure)) }
            return v
        }
    }

    /// Reloads, counts the outcome and logs it once (one line; a refusal with several errors
    /// lists them after it). `trigger` says who asked, for the log.
    public func reload(trigger: String = "ctl reload") throws(ControlError) -> ReloadResult {
        do throws(ControlError) {
            let r = try applyReload()
            reloads.count(ok: true)
            var line = "reloaded \(source.name): version \(r.version) (from \(trigger))"
            if !r.listenersOpened.isEmpty { line += "; listening on \(r.listenersOpened.joined(separator: ", "))" }
            if !r.listenersClosed.isEmpty { line += "; closed \(r.listenersClosed.joined(separator: ", "))" }
            if !r.restartNeeded.isEmpty { line += "; needs a restart to change: \(r.restartNeeded.joined(separator: ", "))" }
            log(line)
            recentEvents.record("reload", "version \(r.version) (from \(trigger))")
            for d in r.droppedOverrides { log("reload: dropped override \(d)") }
            for w in r.warnings { log("warning: \(w)") }
            return r
        } catch {
            reloads.count(ok: false)
            log("\(error.message) (from \(trigger))")
            recentEvents.record("reload refused", "\(error.message) (from \(trigger))")
            let errors = error.details["errors"]?.array ?? []
            // A single error is already in the message.
            if errors.count > 1 { for e in errors { log("  \(e.plainText)") } }
            throw error
        }
    }

    private func applyReload() throws(ControlError) -> ReloadResult {
        dispatchPrecondition(condition: .onQueue(queue))
        // systemd hears RELOADING then READY around it (Type=notify).
        reloadWillStart()
        defer { reloadDidEnd() }
        return try reloadNow()
    }

    private func reloadNow() throws(ControlError) -> ReloadResult {
        let refused = "reload refused, the running config is unchanged"
        let loaded: ConfigLoadResult
        do { loaded = try source.load() } catch {
            throw Self.refusal(refused, error.messages)
        }
        names.resolveMissing(loaded.config.nameEndpoints + overrides.applied(to: loaded.config).config.nameEndpoints,
                             with: resolver)
        let settled: Settled
        do { settled = try Self.settle(overrides, on: loaded.config, version: version + 1, registry: registry, names: names) } catch {
            throw Self.refusal(refused, error.messages)
        }
        // Certificates and upstream TLS are built before anything changes: a bad one refuses the
        // reload and the running ones keep serving.
        let listeners: [String: TLSServer]
        let secured: UpstreamSecurity
        let obtained: UpstreamCredentials
        do {
            listeners = try TLSMaterial.listeners(loaded.config, workers: server?.workerCount ?? ProxyServer.workerCount(for: loaded.config.workers),
                                                  file: source.name)
            (secured, obtained) = try tlsMaterial.security(settled.config, registry: registry, file: source.name)
        } catch {
            throw Self.refusal(refused, error.messages)
        }
        let before = fileConfig.proxySettings.listeners.map(\.description)
        let wanted = loaded.config.proxySettings.listeners
        let after = wanted.map(\.description)
        if let server, before != after {
            // New TLS listeners must have their certificates before they accept.
            server.setListenerTLS(listeners)
            do throws(SystemError) { try server.setListeners(wanted) } catch {
                server.setListenerTLS(listenerTLS)
                throw ControlError("\(refused): cannot open the new listeners: \(error)")
            }
        }
        let old = fileConfig
        adopt(file: loaded.config, settled: settled, security: secured, credentials: obtained, listeners: listeners)
        var result = ReloadResult(
            version: version,
            listenersOpened: after.filter { !before.contains($0) },
            listenersClosed: before.filter { !after.contains($0) },
            droppedOverrides: settled.dropped,
            warnings: loaded.warnings,
            restartNeeded: Self.restartNeeded(old, loaded.config))
        result.masked = Self.masked(old: old, new: loaded.config, kept: settled.kept)
        for line in result.masked { log("reload: \(line)") }
        if !settled.dropped.isEmpty {
            result.saveFailure = persist()
        }
        return result
    }

    /// Runs a reload on the state queue and logs its outcome (SIGHUP has nobody to answer).
    /// `reason` names who asked in the log line (e.g. "config file changed"); SIGHUP by default.
    public func reloadAndLog(because reason: String? = nil) {
        queue.async { [self] in _ = try? reload(trigger: reason ?? "SIGHUP") }
    }

    /// One error inline; several as a count, each in `errors` (file:line: key.path: reason).
    private static func refusal(_ prefix: String, _ messages: [String]) -> ControlError {
        let summary = messages.count == 1 ? messages[0] : "\(messages.count) errors"
        return ControlError("\(prefix): \(summary)", details: ["errors": ControlValue(messages)])
    }

    static func restartNeeded(_ old: Config, _ new: Config) -> [String] {
        var keys: [String] = []
        if old.workers != new.workers { keys.append("workers") }
        if old.limits != new.limits { keys.append("limits") }
        if old.timeouts != new.timeouts { keys.append("timeouts") }
        if old.control != new.control { keys.append("control") }
        if old.admin != new.admin { keys.append("admin") }
        if old.user != new.user || old.group != new.group { keys.append("user") }
        if old.watchConfig != new.watchConfig { keys.append("watchConfig") }
        if old.accessLog != new.accessLog { keys.append("accessLog") }
        if old.tracing != new.tracing { keys.append("tracing") }
        if old.fleet != new.fleet { keys.append("fleet") }
        return keys
    }
}
