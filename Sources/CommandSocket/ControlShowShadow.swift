// `show shadow [ROUTE]`, rendered from ShadowReport's rows.
import Proxy
import Runtime

extension ControlShow {
    /// `show shadow [ROUTE]`: per compared mirror, counts by result, the match rate, p50/p99 of
    /// the shadow and of the primary; then the last mismatches.
    static func shadow(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        let args = try c.expect(0, optional: 1)
        let state = c.state
        guard let server = state.server else { throw ControlError("show shadow: the proxy is not running yet") }
        var route: String?
        if let name = args.first { route = try c.route(name).name }
        let report = ShadowReport(server.metrics, route: route)
        func ms(_ h: MetricsReport.Histogram, _ q: Double) -> ControlValue {
            h.quantileMs(q).map { $0.isFinite ? ControlValue.double($0) : ControlValue.string(">30000") } ?? .null
        }
        let rows = report.rows.map { r -> ControlValue in
            var counts: ControlValue = [:]
            for result in ShadowResult.allCases { counts.set(result.name, ControlValue(r.results[result.rawValue])) }
            let compared = r.compared
            let matched = r.results[ShadowResult.match.rawValue]
            return [
                "route": .string(r.route), "shadow": .string(r.shadow), "compared": ControlValue(compared),
                "matchRate": .double(compared > 0 ? (Double(matched) / Double(compared) * 10_000).rounded() / 10_000 : 0),
                "results": counts,
                "shadowP50Ms": ms(r.shadowLatency, 0.5), "shadowP99Ms": ms(r.shadowLatency, 0.99),
                "primaryP50Ms": ms(r.primaryLatency, 0.5), "primaryP99Ms": ms(r.primaryLatency, 0.99),
            ]
        }
        let mismatches = report.mismatches.map { e -> ControlValue in
            [
                "route": .string(e.route), "shadow": .string(e.shadow), "result": .string(e.m.result.name),
                "method": .string(e.m.method), "path": .string(e.m.path),
                "status": ControlValue(UInt64(e.m.primaryStatus)), "shadowStatus": ControlValue(UInt64(e.m.shadowStatus)),
                "requestId": .string(hex(e.m.requestID)),
            ]
        }
        return .reply(["shadows": .array(rows), "mismatches": .array(mismatches)])
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
