// The running proxy's endpoint host names: resolved when a config, a reload or a command brings
// them in (RuntimeState), resolved again in the background (NameWatcher), and a changed answer
// published as a new snapshot, the way every runtime change is: requests in flight finish on the
// address they started with, new ones go to the new addresses.
import Config
import Dispatch
import Proxy
import Routing

extension RuntimeState {
    /// Starts resolving the config's host names again every `resolveEveryMs`, on a thread of
    /// its own. Call once the proxy runs (after `attach`).
    public func startResolving() {
        queue.sync {
            guard watcher == nil else { return }
            let w = NameWatcher(state: self, resolver: resolver, log: log)
            watcher = w
            w.start()
        }
    }

    /// Stops resolving (without waiting for a lookup under way to end).
    public func stopResolving() {
        queue.sync {
            watcher?.stop()
            watcher = nil
        }
    }

    /// After `config` changed: the names it has, and only those kept in the table.
    func configChanged() {
        nameEndpoints = config.nameEndpoints
        names.keepOnly(nameEndpoints)
    }

    /// Fresh answers from the resolver thread, by endpoint as written. Those that differ from
    /// what the snapshot uses are swapped in with one new snapshot; names the config no longer
    /// has are ignored. Returns the new version, or nil when nothing changed.
    @discardableResult
    func resolved(_ answers: [String: [ResolvedAddress]]) -> UInt64? {
        dispatchPrecondition(condition: .onQueue(queue))
        var next = names
        var changes: [String] = []
        for (written, found) in answers.sorted(by: { $0.key < $1.key }) where !found.isEmpty {
            guard let known = names.addresses[written] else { continue }
            let sorted = found.sorted()
            if sorted == known { continue }
            next.addresses[written] = sorted
            changes.append("\(written) now resolves to \(sorted.map(\.description).joined(separator: ", "))"
                + " (was \(known.map(\.description).joined(separator: ", ")))")
        }
        guard !changes.isEmpty else { return nil }
        let built: Snapshot
        do { built = try SnapshotBuilder.build(config, version: version + 1, registry: registry, names: next) } catch {
            log("resolver: \(changes.joined(separator: "; ")), but the snapshot does not build, kept the old addresses: "
                + error.messages.joined(separator: "; "))
            return nil
        }
        names = next
        publish(built, security: security)
        log("resolver: \(changes.joined(separator: "; ")): version \(built.version)")
        return built.version
    }

    /// Exchanges in flight on `address`: on each of its addresses when it is a host name.
    package func inFlight(_ address: Address, server: ProxyServer) -> UInt64 {
        names.keys(for: address).reduce(0) { total, key in
            registry.ids(forAddress: key).reduce(total) { $0 + server.metrics.inFlight(endpoint: $1) }
        }
    }
}
