// `show experiment [ROUTE]`, rendered from ExperimentReport: the split's health (new units per
// variant against the weights), then per goal the rates, the comparison with the control and the
// verdict in words. `--json` carries the same plus each sketch, so a fleet's counts can be merged.
import Experiments
import Proxy
import Runtime

extension ControlShow {
    static func experiment(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(0, optional: 1)
        let state = c.state
        guard let server = state.server else { throw ControlError("show experiment: the proxy is not running yet") }
        var route: String?
        if let name = args.first {
            route = try c.route(name).name
            guard case .split(let split)? = c.config[route: name]?.target, split.experiment != nil else {
                throw ControlError("route \"\(name)\" runs no experiment (add \"experiment\" to its split)")
            }
        }
        let reports = ExperimentReport.all(state.snapshot, registry: server.experiments, looks: state.experimentLooks,
                                           route: route)
        let values = reports.map(value)
        if route != nil, let only = values.first { return .reply(only) }
        return .reply(["experiments": .array(values)])
    }

    private static func value(_ r: ExperimentReport) -> ControlValue {
        var srm: ControlValue = [
            "units": .int(r.srmUnits), "threshold": .double(r.srmThreshold), "minUnits": .int(r.minUnits),
            "mismatch": .bool(r.srmMismatch),
        ]
        srm.set("pValue", r.srm.map { .double($0.pValue) } ?? .null)
        srm.set("chiSquare", r.srm.map { .double(rounded($0.statistic)) } ?? .null)
        let expected = r.srm?.expectedShares
        var shares: ControlValue = [:]
        for (i, v) in r.variants.enumerated() where v.weight > 0 || v.newUnits > 0 {
            let observed = r.srmUnits > 0 ? Double(v.newUnits) / Double(r.srmUnits) : 0
            shares.set(v.name, ["newUnits": ControlValue(v.newUnits), "observedShare": .double(rounded(observed)),
                                "expectedShare": expected.map { i < $0.count ? .double(rounded($0[i])) : .null } ?? .null])
        }
        srm.set("variants", shares)
        srm.set("verdict", .string(srmWords(r)))
        let variants = r.variants.map { v -> ControlValue in
            ["variant": .string(v.name), "weight": .int(v.weight), "newUnits": ControlValue(v.newUnits),
             "newUnitsTotal": ControlValue(v.newUnitsTotal), "unitsExposed": .int(v.exposed)]
        }
        var goals: ControlValue = [:]
        for g in r.goals {
            var arms: [ControlValue] = []
            for (i, v) in r.variants.enumerated() {
                var arm: ControlValue = ["variant": .string(v.name), "units": .int(v.exposed),
                                         "converted": .int(i < g.converted.count ? g.converted[i] : 0)]
                if let a = g.verdict?.arms.first(where: { $0.name == v.name }) {
                    arm.set("rate", a.rate.map { .double(rounded($0.rate)) } ?? .null)
                    arm.set("rate95", a.rate.map { .array([.double(rounded($0.lower)), .double(rounded($0.upper))]) } ?? .null)
                    if let z = a.zTest {
                        arm.set("differenceToControl", .double(rounded(z.difference)))
                        arm.set("difference95", .array([.double(rounded(z.lower)), .double(rounded(z.upper))]))
                        arm.set("zTestPValue", .double(z.pValue))
                    }
                    if v.name != r.control { arm.set("alwaysValidPValue", .double(a.alwaysValid.value)) }
                }
                arms.append(arm)
            }
            goals.set(g.name, ["verdict": .string(g.verdict?.summary ?? "No verdict: \(r.control) is not a variant of the split"),
                               "winner": ControlValue(g.verdict?.winner), "variants": .array(arms)])
        }
        var sketches: ControlValue = [:]
        var exposed: ControlValue = [:]
        for v in r.variants { exposed.set(v.name, .string(v.exposedSketch.encoded())) }
        sketches.set("exposed", exposed)
        var converted: ControlValue = [:]
        for g in r.goals {
            var byVariant: ControlValue = [:]
            for (i, v) in r.variants.enumerated() where i < g.sketches.count { byVariant.set(v.name, .string(g.sketches[i].encoded())) }
            converted.set(g.name, byVariant)
        }
        sketches.set("converted", converted)
        return [
            "experiment": .string(r.name), "route": .string(r.route), "control": .string(r.control),
            "verdict": .string(words(r)), "winner": ControlValue(r.winner),
            "epoch": ["number": .int(r.epoch), "since": .string(Timestamp.string(r.epochStartNs)),
                      "weights": .object(r.variants.filter { $0.weight > 0 }.map { .init($0.name, .int($0.weight)) })],
            "srm": srm, "variants": .array(variants), "goals": goals,
            "exposureLog": ["path": ControlValue(r.exposureLog), "written": ControlValue(r.exposuresWritten),
                            "dropped": ControlValue(r.exposuresDropped)],
            "unitError": .double(rounded(HyperLogLog.relativeStandardError)),
            "sketches": sketches,
        ]
    }

    /// The experiment in one sentence: a broken split first, then the primary goal's verdict.
    private static func words(_ r: ExperimentReport) -> String {
        if r.srmMismatch { return srmWords(r) + "; no result can be trusted until it is fixed" }
        guard let first = r.goals.first else { return "No goals: " + srmWords(r) }
        return (first.verdict?.summary ?? "No verdict") + " (goal \(first.name))"
    }

    private static func srmWords(_ r: ExperimentReport) -> String {
        guard let srm = r.srm else { return "Sample ratio: fewer than two weighted variants" }
        let p = significant(srm.pValue)
        if r.srmUnits < r.minUnits { return "Sample ratio: \(r.srmUnits) new units this epoch, \(r.minUnits) needed to judge" }
        if r.srmMismatch { return "Sample-ratio mismatch: p = \(p) < \(r.srmThreshold) over \(r.srmUnits) new units" }
        return "Sample ratio healthy: p = \(p) over \(r.srmUnits) new units"
    }

    /// A p-value people read: four decimals, or the exponent form below 0.0001.
    private static func significant(_ p: Double) -> String {
        p >= 0.0001 ? String((p * 10_000).rounded() / 10_000) : String(p)
    }

    private static func rounded(_ x: Double) -> Double { x.isFinite ? (x * 1_000_000).rounded() / 1_000_000 : 0 }
}
