// Staging a change in a transaction: the staged config is edited in place and only what the
// change touched is checked; no snapshot is built until commit, which derives the config from
// the overrides and checks everything once. (Replaying the transaction and building a snapshot
// for every staged line made 1,000 `endpoint add` take 290 s.)
import Config
import Dispatch
import Rollouts
import Routing
import Runtime

/// A session's open transaction.
struct Transaction {
    var changes: [RuntimeChange] = []
    /// The effective config with the staged changes: what later commands validate against.
    var config: Config
    /// The snapshot version `config` was derived from. When another client commits (or a
    /// reload happens) in between, `config` is derived again before the next command.
    var base: UInt64
    /// `begin --bake ...`: the guard the commit starts (options on `commit` win).
    var guarded: GuardOptions? = nil
}

extension RuntimeState {
    /// The staged config of `changes` on top of the current overrides, and whether its live
    /// pools can all serve; O(every override), so only for a rebase or a `reset`.
    func derive(_ changes: [RuntimeChange]) throws(ControlError) -> Config {
        dispatchPrecondition(condition: .onQueue(queue))
        var next = overrides
        for change in changes { next.apply(change) }
        let applied = next.applied(to: fileConfig)
        if let first = applied.dropped.first { throw ControlError(first) }
        if let problem = applied.config.livePoolProblems().first { throw ControlError(problem) }
        return applied.config
    }

    /// Brings `transaction` up to date with changes committed since it was staged on.
    func rebase(_ transaction: inout Transaction) throws(ControlError) {
        guard transaction.base != version else { return }
        do throws(ControlError) {
            transaction.config = try derive(transaction.changes)
        } catch {
            throw ControlError("the staged changes no longer apply after version \(version) was committed: "
                + "\(error.message); abort the transaction")
        }
        transaction.base = version
    }

    /// Adds `change` to `transaction`; refused changes leave it as it was.
    func stage(_ change: RuntimeChange, into transaction: inout Transaction) throws(ControlError) {
        if case .reset = change {
            transaction.config = try derive(transaction.changes + [change])
        } else {
            try transaction.config.stage(change)
        }
        transaction.changes.append(change)
    }
}

extension Config {
    /// Problems that make a config unservable after runtime edits: a live pool (a plain
    /// upstream's, or the live color of a blue/green one) with no endpoint that is not draining.
    /// SnapshotBuilder refuses the same; this is the cheap check for staging.
    func livePoolProblems() -> [String] {
        var problems: [String] = []
        for upstream in upstreams {
            switch upstream.kind {
            case .pool(let pool):
                if pool.servingCount == 0 { problems.append(Self.noServing(PoolKey(upstream: upstream.name, color: nil))) }
            case .blueGreen(let bg):
                if bg[bg.live].servingCount == 0 { problems.append(Self.noServing(PoolKey(upstream: upstream.name, color: bg.live))) }
            }
        }
        return problems
    }

    static func noServing(_ key: PoolKey) -> String {
        "\(key) would be live with no serving endpoint (every one removed or draining)"
    }

    /// Applies one change that its command validated against this config, in place. Checks
    /// again what the change could break in the pool it touches, before touching it.
    mutating func stage(_ change: RuntimeChange) throws(ControlError) {
        switch change {
        case .live(let name, let color):
            guard let index = upstreamIndex(named: name), let bg = upstreams[index].blueGreen else {
                throw ControlError("no blue/green upstream \"\(name)\"")
            }
            if bg[color].servingCount == 0 { throw ControlError(Self.noServing(PoolKey(upstream: name, color: color))) }
            upstreams[index].setLive(color)
        case .weights(let name, let list):
            guard let index = routeIndex(named: name), var split = routes[index].split else {
                throw ControlError("no route \"\(name)\" with variants")
            }
            for w in list {
                if let v = split.variantIndex(named: w.variant) { split.variants[v].weight = w.weight }
            }
            if split.variants.allSatisfy({ $0.weight <= 0 }) {
                throw ControlError("the weights of route \"\(name)\" would all be 0")
            }
            routes[index].split = split
        case .mirror(let name, let upstream, let percent):
            guard let index = routeIndex(named: name) else { throw ControlError("no route \"\(name)\"") }
            if let m = routes[index].mirrorIndex(upstream: upstream) {
                if percent == 0 { routes[index].mirrors.remove(at: m) } else { routes[index].mirrors[m].percent = percent }
            } else if percent > 0 {
                if routes[index].mirrors.count >= ConfigParser.maxMirrors {
                    throw ControlError("route \"\(name)\" already has \(ConfigParser.maxMirrors) mirrors")
                }
                routes[index].mirrors.append(Config.Mirror(upstream: upstream, percent: percent))
            }
        case .endpoint(let action, let key, let address):
            guard let index = upstreamIndex(named: key.upstream) else { throw ControlError("no upstream \"\(key.upstream)\"") }
            let edit = try upstreams[index].endpointEdit(action, key, address)
            upstreams[index].updatePool(key.color, edit)
        case .reset:
            preconditionFailure("reset is staged by deriving the config again")
        }
    }
}

extension Config.Upstream {
    mutating func setLive(_ color: Color) {
        guard case .blueGreen(var bg) = kind else { return }
        kind = .pool(Config.Pool(endpoints: []))  // let go of the pools: no copy
        bg.live = color
        kind = .blueGreen(bg)
    }

    /// The in-place edit of the pool `key` names for `action`, once it is known to keep the
    /// pool servable.
    fileprivate func endpointEdit(_ action: EndpointAction, _ key: PoolKey,
                                  _ address: String) throws(ControlError) -> (inout Config.Pool) -> Void {
        guard let pool = pool(key.color) else { throw ControlError("\(key) is not a pool of \"\(name)\"") }
        let live = blueGreen.map { $0.live == key.color } ?? true
        let index = pool.endpointIndex(address: address)
        switch action {
        case .add:
            if let index { return { $0.setDraining(false, at: index) } }
            let parsed: Address
            do throws(AddressError) { parsed = try Address(endpoint: address) } catch {
                throw ControlError("endpoint add: \(error.reason)")
            }
            return { $0.append(Config.Endpoint(address: parsed)) }
        case .remove:
            guard let index else { throw ControlError("no endpoint \(address) in \(key)") }
            if pool.endpoints.count == 1 { throw ControlError("\(address) is the last endpoint of \(key)") }
            let serving = pool.servingCount - (pool.endpoints[index].draining ? 0 : 1)
            if live && serving == 0 { throw ControlError(Config.noServing(key)) }
            return { $0.remove(at: index) }
        case .drain:
            guard let index else { throw ControlError("no endpoint \(address) in \(key)") }
            let serving = pool.servingCount - (pool.endpoints[index].draining ? 0 : 1)
            if live && serving == 0 { throw ControlError(Config.noServing(key)) }
            return { $0.setDraining(true, at: index) }
        }
    }
}
