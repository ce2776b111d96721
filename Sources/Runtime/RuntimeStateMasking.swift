// What a reload could not change: a key edited in the file while a runtime override of the same
// key is kept, so the file's new value is not what serves. Said per key, in the reload's reply
// and in the log, with the command that gives the file its way (`reset NAME`).
import Config
import Synchronization

extension RuntimeState {
    /// One line per key whose value changed between `old` and `new` (the file before and after
    /// the reload) while an override in `kept` still decides it.
    static func masked(old: Config, new: Config, kept: Overrides) -> [String] {
        var lines: [String] = []
        func line(_ key: String, file: String, runtime: String, name: String) {
            lines.append("\(key): file \(file), runtime \(runtime) kept; reset \(name) to take the file's")
        }
        // A live color needs no line: with two colors, a file that changes it agrees with the
        // runtime color, which is then dropped.
        for (name, variants) in kept.weights.sorted(by: { $0.key < $1.key }) {
            guard let before = old[route: name]?.split?.variants, let after = new[route: name]?.split?.variants,
                  before != after else { continue }
            let file = after.map { String($0.weight) }.joined(separator: "/")
            let runtime = after.map { String(variants[$0.name] ?? $0.weight) }.joined(separator: "/")
            guard file != runtime else { continue }
            line("routes.\(name).split weights", file: file, runtime: runtime, name: name)
        }
        for (name, shadows) in kept.mirrors.sorted(by: { $0.key < $1.key }) {
            for (upstream, percent) in shadows.sorted(by: { $0.key < $1.key }) {
                func filePercent(_ config: Config) -> Double {
                    config[route: name]?.mirrors.first { $0.upstream == upstream }?.percent ?? 0
                }
                let before = filePercent(old), after = filePercent(new)
                guard before != after, after != percent else { continue }
                line("routes.\(name).mirror \(upstream) percent", file: ControlValue.format(after),
                     runtime: ControlValue.format(percent), name: name)
            }
        }
        for (key, changes) in kept.endpoints.sorted(by: { $0.key < $1.key }) {
            guard let pool = PoolKey(parsing: key) else { continue }
            func endpoints(_ config: Config) -> [String]? {
                guard let upstream = config[upstream: pool.upstream] else { return nil }
                switch upstream.kind {
                case .pool(let p): return pool.color == nil ? p.endpoints.map(\.address.description) : nil
                case .blueGreen(let bg): return pool.color.map { bg[$0].endpoints.map(\.address.description) }
                }
            }
            guard let before = endpoints(old), let after = endpoints(new), before != after else { continue }
            var edits: [String] = []
            if !changes.added.isEmpty { edits.append("added " + changes.added.joined(separator: " ")) }
            if !changes.removed.isEmpty { edits.append("removed " + changes.removed.joined(separator: " ")) }
            if !changes.draining.isEmpty { edits.append("draining " + changes.draining.joined(separator: " ")) }
            line("upstreams.\(key) endpoints", file: after.joined(separator: " "),
                 runtime: edits.joined(separator: ", ") + " on top", name: pool.upstream)
        }
        return lines
    }
}
