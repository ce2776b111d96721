// The overrides as etcd keys, one key per object so that changes to different objects never
// conflict: under PREFIX `state/live/UPSTREAM` (the live color), `state/weights/ROUTE`,
// `state/mirrors/ROUTE`, `state/endpoints/POOL` (an upstream, or `upstream/color`),
// `state/rollouts/ROUTE` and `state/guards/ID`, each a JSON value like the state file's member
// of that object.
import Config
import Etcd
import Foundation
import Runtime

enum FleetKeys {
    static let kinds = ["live", "weights", "mirrors", "endpoints", "rollouts", "guards"]

    /// Every object of `overrides` as a key and its JSON value.
    static func entries(_ overrides: Overrides, prefix: String) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        let state = prefix + "state/"
        // The plain kinds by the small writer; rollouts (rarer, richer) by Codable.
        for (name, color) in overrides.live { out[state + "live/" + name] = JSONValues.write(color) }
        for (name, weights) in overrides.weights { out[state + "weights/" + name] = JSONValues.write(weights) }
        for (name, mirrors) in overrides.mirrors { out[state + "mirrors/" + name] = JSONValues.write(mirrors) }
        for (name, changes) in overrides.endpoints where !changes.isEmpty {
            out[state + "endpoints/" + name] = JSONValues.write(["added": changes.added, "removed": changes.removed, "draining": changes.draining])
        }
        for (name, status) in overrides.rollouts { out[state + "rollouts/" + name] = encode(status) }
        for (id, text) in overrides.guards { out[state + "guards/" + id] = Array(text.utf8) }
        return out
    }

    /// The keys whose values differ between `old` and `new`: the new value, or nil to delete.
    static func diff(from old: Overrides, to new: Overrides, prefix: String) -> [(key: String, value: [UInt8]?)] {
        let before = entries(old, prefix: prefix)
        let after = entries(new, prefix: prefix)
        var out: [(key: String, value: [UInt8]?)] = []
        for (key, value) in after.sorted(by: { $0.key < $1.key }) where before[key] != value { out.append((key, value)) }
        for key in before.keys.sorted() where after[key] == nil { out.append((key, nil)) }
        return out
    }

    /// The overrides the keys under `prefix`state/ hold; a key that is not one of them, or a
    /// value that does not decode, is reported and left out (another version of the proxy, or
    /// a hand edit, may have written it).
    static func overrides(_ kvs: [String: EtcdKeyValue], prefix: String) -> (overrides: Overrides, problems: [String]) {
        var o = Overrides()
        var problems: [String] = []
        let state = prefix + "state/"
        for (key, kv) in kvs.sorted(by: { $0.key < $1.key }) {
            guard key.hasPrefix(state) else { continue }
            let rest = key.dropFirst(state.count)
            guard let slash = rest.firstIndex(of: "/"), rest.index(after: slash) < rest.endIndex else {
                problems.append("\(key): not a state key")
                continue
            }
            let kind = String(rest[..<slash])
            let name = String(rest[rest.index(after: slash)...])
            do {
                switch kind {
                case "live": o.live[name] = try plain(kv.value) { $0 as? String }
                case "weights":
                    o.weights[name] = try plain(kv.value) { any in
                        (any as? [String: Any]).flatMap { d in
                            var out: [String: Int] = [:]
                            for (k, v) in d {
                                guard let n = JSONValues.integer(v, in: 0...Int64(Int32.max), numberOnly: true) else { return nil }
                                out[k] = Int(n)
                            }
                            return out
                        }
                    }
                case "mirrors":
                    o.mirrors[name] = try plain(kv.value) { any in
                        (any as? [String: Any]).flatMap { d in
                            var out: [String: Double] = [:]
                            for (k, v) in d {
                                guard let x = (v as? JSONValues.Number)?.double else { return nil }
                                out[k] = x
                            }
                            return out
                        }
                    }
                case "endpoints":
                    o.endpoints[name] = try plain(kv.value) { any in
                        guard let d = any as? [String: Any] else { return nil }
                        var changes = PoolChanges()
                        for (field, list) in [("added", \PoolChanges.added), ("removed", \PoolChanges.removed), ("draining", \PoolChanges.draining)] {
                            guard let value = d[field] else { continue }
                            guard let strings = value as? [Any], strings.allSatisfy({ $0 is String }) else { return nil }
                            changes[keyPath: list] = strings.compactMap { $0 as? String }
                        }
                        return changes
                    }
                case "rollouts": o.rollouts[name] = try decode(RolloutStatus.self, kv.value)
                case "guards": o.guards[name] = String(decoding: kv.value, as: UTF8.self)
                default: problems.append("\(key): unknown kind \"\(kind)\"")
                }
            } catch {
                problems.append("\(key): \(error)")
            }
        }
        return (o, problems)
    }

    private static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { Array($0) } ?? []
    }

    struct Undecodable: Error, CustomStringConvertible { var description: String }

    /// A value read by the small JSON reader and shaped by `shape`; nil from it: not this kind.
    private static func plain<T>(_ bytes: [UInt8], _ shape: (Any) -> T?) throws -> T {
        guard let any = JSONValues.read(bytes), let value = shape(any) else {
            throw Undecodable(description: "not a value of this kind (\(String(decoding: bytes.prefix(80), as: UTF8.self)))")
        }
        return value
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw Undecodable(description: "not a value of this kind (\(String(decoding: bytes.prefix(80), as: UTF8.self)))")
        }
    }
}
