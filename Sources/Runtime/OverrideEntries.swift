// The runtime overrides as rows, each next to the config's value: what `show state` lists, what
// `reset` takes, and what the start-up log line says.
import Config

/// One runtime override, next to the config's value, for `show state` and `reset`.
package struct OverrideEntry {
    /// The route or upstream it belongs to (what `reset` takes).
    package var owner: String
    package var setting: String
    package var value: ControlValue
    package var config: ControlValue

    package var summary: String { "\(owner) \(setting) = \(value.plainText) (config: \(config.plainText))" }
}

extension ControlValue {
    /// A scalar as text, without JSON quotes.
    package var plainText: String {
        switch self {
        case .string(let s): return s
        case .null: return "-"
        default: return json
        }
    }
}

extension RuntimeState {
    package func describe(_ o: Overrides) -> [OverrideEntry] {
        var entries: [OverrideEntry] = []
        for (name, color) in o.live.sorted(by: { $0.key < $1.key }) {
            entries.append(OverrideEntry(owner: name, setting: "live", value: .string(color),
                                         config: ControlValue(fileConfig[upstream: name]?.blueGreen?.live.name)))
        }
        for (route, variants) in o.weights.sorted(by: { $0.key < $1.key }) {
            let split = fileConfig[route: route]?.split
            for (variant, weight) in variants.sorted(by: { $0.key < $1.key }) {
                let configured = split?.variantIndex(named: variant).map { split!.variants[$0].weight }
                entries.append(OverrideEntry(owner: route, setting: "weight \(variant)", value: .int(weight),
                                             config: configured.map { .int($0) } ?? .null))
            }
        }
        for (route, shadows) in o.mirrors.sorted(by: { $0.key < $1.key }) {
            let r = fileConfig[route: route]
            for (upstream, percent) in shadows.sorted(by: { $0.key < $1.key }) {
                let configured = r?.mirrorIndex(upstream: upstream).map { r!.mirrors[$0].percent }
                entries.append(OverrideEntry(owner: route, setting: "mirror \(upstream) percent",
                                             value: percent == 0 ? "removed" : .double(percent),
                                             config: configured.map { .double($0) } ?? "none"))
            }
        }
        for (key, changes) in o.endpoints.sorted(by: { $0.key < $1.key }) {
            let owner = PoolKey(parsing: key)?.upstream ?? key
            for a in changes.added {
                entries.append(OverrideEntry(owner: owner, setting: "endpoint \(key) \(a)", value: "added", config: "absent"))
            }
            for a in changes.removed {
                entries.append(OverrideEntry(owner: owner, setting: "endpoint \(key) \(a)", value: "removed", config: "present"))
            }
            for a in changes.draining {
                entries.append(OverrideEntry(owner: owner, setting: "endpoint \(key) \(a)", value: "draining",
                                             config: changes.added.contains(a) ? "absent" : "serving"))
            }
        }
        return entries
    }
}
