// Reload (`reload`, SIGHUP): re-read, validate, re-apply overrides, build, open/close listeners,
// swap; anything invalid refuses the whole reload and the running config keeps serving.
import Dispatch
import Proxy
import Reactor

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

        public var value: ControlValue {
            var v: ControlValue = [
                "version": ControlValue(version),
                "listenersOpened": ControlValue(listenersOpened),
                "listenersClosed": ControlValue(listenersClosed),
                "droppedOverrides": ControlValue(droppedOverrides),
                "warnings": ControlValue(warnings),
                "restartNeeded": ControlValue(restartNeeded),
            ]
            if let saveFailure { v.set("stateFileError", .string(saveFailure)) }
            return v
        }
    }

    public func reload() throws(ControlError) -> ReloadResult {
        dispatchPrecondition(condition: .onQueue(queue))
        let refused = "reload refused, the running config is unchanged"
        let loaded: ConfigLoadResult
        do { loaded = try source.load() } catch {
            throw Self.refusal(refused, error.messages)
        }
        let tls = loaded.config.upstreamTLSNotSupported()
        if !tls.isEmpty { throw Self.refusal(refused, tls) }
        names.resolveMissing(loaded.config.nameEndpoints + overrides.applied(to: loaded.config).config.nameEndpoints,
                             with: resolver)
        let settled: Settled
        do { settled = try Self.settle(overrides, on: loaded.config, version: version + 1, registry: registry, names: names) } catch {
            throw Self.refusal(refused, error.messages)
        }
        let before = fileConfig.proxySettings.listeners.map(\.description)
        let wanted = loaded.config.proxySettings.listeners
        let after = wanted.map(\.description)
        if let server, before != after {
            do throws(SystemError) { try server.setListeners(wanted) } catch {
                throw ControlError("\(refused): cannot open the new listeners: \(error)")
            }
        }
        let old = fileConfig
        adopt(file: loaded.config, settled: settled)
        var result = ReloadResult(
            version: version,
            listenersOpened: after.filter { !before.contains($0) },
            listenersClosed: before.filter { !after.contains($0) },
            droppedOverrides: settled.dropped,
            warnings: loaded.warnings,
            restartNeeded: Self.restartNeeded(old, loaded.config))
        if !settled.dropped.isEmpty {
            result.saveFailure = persist()
        }
        return result
    }

    /// Runs a reload on the state queue and logs its outcome (SIGHUP has nobody to answer).
    public func reloadAndLog() {
        queue.async { [self] in
            do throws(ControlError) {
                let r = try reload()
                var line = "reloaded \(source.name): version \(r.version)"
                if !r.listenersOpened.isEmpty { line += "; listening on \(r.listenersOpened.joined(separator: ", "))" }
                if !r.listenersClosed.isEmpty { line += "; closed \(r.listenersClosed.joined(separator: ", "))" }
                if !r.restartNeeded.isEmpty { line += "; needs a restart to change: \(r.restartNeeded.joined(separator: ", "))" }
                log(line)
                for d in r.droppedOverrides { log("reload: dropped override \(d)") }
                for w in r.warnings { log("warning: \(w)") }
            } catch {
                log(error.message)
                for e in error.details["errors"]?.array ?? [] { log("  \(e.plainText)") }
            }
        }
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
        return keys
    }
}
