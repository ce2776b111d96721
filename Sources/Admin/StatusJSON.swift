// /status.json: the status page's data as JSON (ControlValue escapes every string), the same
// report the HTML renders. A rollout and the guards are the replies of `show rollout` and
// `show guards`.
import Config
import Proxy
import Rollouts
import Runtime

extension StatusReport {
    var json: String {
        var v: ControlValue = [
            "time": .string(RolloutStatus.timestamp(now)), "version": ControlValue(version),
            "windowSeconds": .double(rounded(windowSeconds)),
            "routes": .array(routes.map { $0.value(now: now) }),
            "upstreams": .array(upstreams.map(\.value)),
            "mismatches": .array(mismatches.map { e in
                ["route": .string(e.route), "shadow": .string(e.shadow), "result": .string(e.m.result.name),
                 "method": .string(e.m.method), "path": .string(e.m.path), "status": .int(e.m.primaryStatus),
                 "shadowStatus": .int(e.m.shadowStatus)]
            }),
        ]
        if let control {
            v.set("guards", control.guards["guards"] ?? .array([]))
            v.set("events", .array(control.events.map {
                ["at": .string(RolloutStatus.timestamp($0.at)), "kind": .string($0.kind), "detail": .string($0.detail)]
            }))
        }
        if !hooks.isEmpty {
            var byEvent: ControlValue = [:]
            for (event, counts) in hooks.sorted(by: { $0.key < $1.key }) {
                var row: ControlValue = [:]
                for (result, n) in counts.sorted(by: { $0.key < $1.key }) { row.set(result, ControlValue(n)) }
                byEvent.set(event, row)
            }
            v.set("hooks", byEvent)
        }
        if controlStale { v.set("stale", "rollouts, guards and events are from an earlier look: the state was busy") }
        return v.json + "\n"
    }
}

func rounded(_ x: Double, _ places: Double = 1000) -> Double { (x * places).rounded() / places }

extension StatusReport.Route {
    func value(now: Double) -> ControlValue {
        var v: ControlValue = ["route": .string(name), "variants": .array(variants.map(\.value))]
        if let rollout { v.set("rollout", rollout.value(route: name, now: now)) }
        if !shadows.isEmpty {
            v.set("shadows", .array(shadows.map { s in
                ["shadow": .string(s.shadow), "compared": ControlValue(s.compared), "matchRate": s.matchRate.map { .double(rounded($0, 10_000)) } ?? .null]
            }))
        }
        if let e = experiment {
            v.set("experiment", [
                "name": .string(e.name), "srmPValue": e.srm.map { .double($0.pValue) } ?? .null, "srmMismatch": .bool(e.srmMismatch),
                "goals": .array(e.goals.map { g in ["goal": .string(g.name), "winner": ControlValue(g.verdict?.winner)] }),
            ])
        }
        return v
    }
}

extension StatusReport.Variant {
    var value: ControlValue {
        [
            "variant": .string(name), "upstream": .string(upstream), "weight": .int(weight),
            "configuredShare": .double(rounded(configuredShare)),
            "observedShare": observedShare.map { .double(rounded($0)) } ?? .null,
            "requests": ControlValue(window.requests), "errors": ControlValue(window.errors),
            "ratePerSecond": ratePerSecond.map { .double(rounded($0)) } ?? .null,
            "errorRate": window.requests > 0 ? .double(rounded(window.errorRate, 10_000)) : .null,
            "p99Ms": p99Ms.map { $0.isFinite ? .double($0) : .string(">30000") } ?? .null,
            "series": .array(series.map { ControlValue($0) }),
        ]
    }
}

extension StatusReport.Upstream {
    var value: ControlValue {
        [
            "upstream": .string(name), "live": ControlValue(live),
            "endpoints": .array(endpoints.map { e in
                ["color": .string(e.color), "address": .string(e.address), "health": .string(e.health),
                 "ejections": ControlValue(e.ejections), "inFlight": ControlValue(e.inFlight)]
            }),
        ]
    }
}

extension ShadowReport.Row {
    /// Matches over compared answers; nil before any.
    var matchRate: Double? {
        compared > 0 ? Double(results[ShadowResult.match.rawValue]) / Double(compared) : nil
    }
}
