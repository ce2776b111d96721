// The Grafana dashboard in deploy/grafana/ against a real Prometheus scraping a running proxy:
// every query of its panels, annotations and variables runs and returns numbers once the test
// has made happen what it shows (traffic to a split route with a rollout that rolls back, a
// mirror with compare, health checks, an experiment, a guarded flip that reverts, a reload), and
// the annotations return nothing before their event.
import Foundation
import TestSupport
import XCTest

/// The dashboard file and its PromQL: panel targets (rows' panels included), annotation queries
/// and query variables, in file order.
struct GrafanaDashboard {
    let object: [String: Any]

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw TestError("\(path): not a JSON object") }
        self.object = object
    }

    /// Every panel, a collapsed row's panels included.
    var panels: [[String: Any]] {
        let top = object["panels"] as? [[String: Any]] ?? []
        return top.flatMap { [$0] + ($0["panels"] as? [[String: Any]] ?? []) }
    }

    var targets: [(panel: String, expr: String)] {
        panels.flatMap { p in (p["targets"] as? [[String: Any]] ?? []).map { (p["title"] as? String ?? "?", $0["expr"] as? String ?? "") } }
    }

    var annotations: [(name: String, expr: String)] {
        let list = (object["annotations"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        return list.compactMap { a in (a["expr"] as? String).map { (a["name"] as? String ?? "?", $0) } }
    }

    var variables: [[String: Any]] { (object["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] }

    /// A query variable's query: a string, or `{"query": ...}` as Grafana 10 writes it.
    static func query(of variable: [String: Any]) -> String {
        variable["query"] as? String ?? (variable["query"] as? [String: Any])?["query"] as? String ?? ""
    }

    /// `expression` with Grafana's variables replaced (`$name` and `${name}`), longest names first.
    static func substitute(_ expression: String, _ values: [String: String]) -> String {
        var out = expression
        for (name, value) in values.sorted(by: { $0.key.count > $1.key.count }) {
            out = out.replacingOccurrences(of: "${\(name)}", with: value).replacingOccurrences(of: "$\(name)", with: value)
        }
        return out
    }
}

final class GrafanaDashboardTests: EndToEndTestCase {
    private let path = RepoPaths.root.appendingPathComponent("deploy/grafana/switchyard.json").path
    private let datasource = "${DS_PROMETHEUS}"

    /// What Grafana needs to import it: a datasource variable every query uses, the route and
    /// variant selectors, unique panel ids on the 24-column grid.
    func testTheDashboardImportsWithADatasourceAndRouteAndVariantSelectors() throws {
        let d = try GrafanaDashboard(path: path)
        XCTAssertGreaterThanOrEqual(d.object["schemaVersion"] as? Int ?? 0, 36)
        let variables = Dictionary(d.variables.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(variables["DS_PROMETHEUS"]?["type"] as? String, "datasource")
        XCTAssertEqual(variables["DS_PROMETHEUS"]?["query"] as? String, "prometheus")
        for name in ["route", "variant"] {
            XCTAssertEqual(variables[name]?["type"] as? String, "query", name)
            XCTAssertTrue(GrafanaDashboard.query(of: variables[name] ?? [:]).hasPrefix("label_values("), name)
        }
        var ids = Set<Int>()
        for p in d.panels {
            let title = p["title"] as? String ?? "?"
            let id = try XCTUnwrap(p["id"] as? Int, title)
            XCTAssertTrue(ids.insert(id).inserted, "panel id \(id) twice")
            let grid = try XCTUnwrap(p["gridPos"] as? [String: Int], title)
            XCTAssertLessThanOrEqual((grid["x"] ?? 99) + (grid["w"] ?? 99), 24, title)
            guard p["type"] as? String != "row" else { continue }
            XCTAssertEqual((p["datasource"] as? [String: Any])?["uid"] as? String, datasource, title)
            XCTAssertFalse((p["targets"] as? [[String: Any]] ?? []).isEmpty, "\(title) has no query")
        }
        XCTAssertFalse(d.annotations.isEmpty)
        XCTAssertTrue(d.targets.allSatisfy { !$0.expr.isEmpty }, "a target without expr")
    }

    func testEveryQueryReturnsSeriesFromAPrometheusScrapingSwitchyard() throws {
        let d = try GrafanaDashboard(path: path)
        let (proxy, control, admin) = try startEverything()
        let prometheus = try startPrometheus(scraping: admin)
        // Three scrapes have seen the rollout not rolled back, blue live and no reload: the
        // "before", long enough for a rate or an increase to have two samples.
        let before = try waitForSeries(prometheus, """
            switchyard_rollout_state{route="shop",state="rolled_back"} == 0 and on () switchyard_config_reloads_total{result="applied"} == 0
              and on () switchyard_live_color{upstream="checkout",color="blue"} == 1 and on () count_over_time(switchyard_snapshot_version[5m]) >= 3
            """)
        guard !before.series.isEmpty else { throw TestError("Prometheus did not scrape the proxy: \(before.error)") }

        var values = ["__rate_interval": "5m", "__interval": "5m", "__range": "5m"]
        for v in d.variables where v["type"] as? String == "query" {
            let name = v["name"] as? String ?? "?"
            let query = GrafanaDashboard.substitute(GrafanaDashboard.query(of: v), values)
            let parts = try XCTUnwrap(query.wholeMatch(of: /label_values\((.+),\s*(\w+)\)/), "\(name): \(query)")
            let found = try prometheus.labelValues(String(parts.2), matching: String(parts.1))
            XCTAssertFalse(found.isEmpty, "variable \(name): \(query) has no values")
            values[name] = "(" + found.joined(separator: "|") + ")"   // what Grafana sends for "All"
        }
        XCTAssertEqual(values["route"], "(cart|shop)")
        let annotations = d.annotations.map { (name: $0.name, expr: GrafanaDashboard.substitute($0.expr, values)) }
        for a in annotations {
            let answer = try prometheus.query(a.expr)
            XCTAssertEqual(answer.status, "success", "\(a.name): \(a.expr): \(answer.error)")
            XCTAssertTrue(answer.series.isEmpty, "annotation \(a.name) before its event: \(answer.series)")
        }

        try makeTheEventsHappen(proxy, control, prometheus)

        let queries = d.targets.map { ("panel \($0.panel)", $0.expr) } + d.annotations.map { ("annotation \($0.name)", $0.expr) }
        var answers: [String: RealPrometheus.Answer] = [:]
        for (what, expr) in queries {
            let q = GrafanaDashboard.substitute(expr, values)
            XCTAssertFalse(q.contains("$"), "\(what): a variable the test does not know: \(q)")
            let answer = try waitForSeries(prometheus, q)
            XCTAssertEqual(answer.status, "success", "\(what): \(q): \(answer.error)")
            XCTAssertFalse(answer.series.isEmpty, "\(what) returned no series: \(q)")
            XCTAssertTrue(answer.series.contains { Self.isNumber($0["value"]) }, "\(what) returned no number: \(q): \(answer.series)")
            answers[what] = answers[what] ?? answer
        }
        // Right, not only there: the canary failed every request and stable none (a variant
        // without a 5xx series reads 0, not nothing); the rollout stopped at step 1, weight 0.
        XCTAssertEqual(Self.byVariant(answers["panel Error rate per variant"]), ["stable": 0, "canary": 1])
        XCTAssertEqual(Self.byVariant(answers["panel Weight per variant"]), ["stable": 100, "canary": 0, "default": 100])
        XCTAssertEqual(Self.byVariant(answers["panel Rollout step"]), ["canary": 1])
    }

    /// Each series' value by its variant label.
    private static func byVariant(_ answer: RealPrometheus.Answer?) -> [String: Double] {
        var out: [String: Double] = [:]
        for s in answer?.series ?? [] {
            guard let variant = (s["metric"] as? [String: String])?["variant"],
                  let text = (s["value"] as? [Any])?.last as? String, let value = Double(text) else { continue }
            out[variant] = value
        }
        return out
    }

    // MARK: the proxy and what happens to it

    /// Upstreams `stable` (health-checked), `canary` (answers 500), `shadow`, and `checkout`
    /// blue/green (green answers 500); route `cart` to checkout, route `shop` split stable/canary
    /// with a rollout of canary, a compared mirror, an experiment and a trusted override header;
    /// control socket and admin.
    private func startEverything() throws -> (RunningProxy, ControlLineClient, UInt16) {
        let canary = Switchable(), green = Switchable()
        canary.status = 500
        green.status = 500
        func port(_ state: Switchable, _ name: String) throws -> UInt16 { try startSwitchable(state, name: name).port }
        let shadow = try startEcho(name: "shadow")
        let checkout = #"{ "blue": { "endpoints": ["127.0.0.1:\#(try port(Switchable(), "blue"))"] }, "#
            + #""green": { "endpoints": ["127.0.0.1:\#(try port(green, "green"))"] }, "live": "blue" }"#
        let stable = #"{ "endpoints": ["127.0.0.1:\#(try port(Switchable(), "stable"))"], "#
            + #""healthCheck": { "path": "/healthz", "intervalMs": 100, "timeoutMs": 100 } }"#
        let shop = #"""
            { "name": "shop",
              "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                         { "variant": "canary", "upstream": "canary", "weight": 0 } ],
              "sticky": { "cookie": "sy-shop", "salt": "shop" },
              "override": { "header": "X-Switchyard-Variant", "trustedSources": ["127.0.0.1/32"] },
              "experiment": { "name": "shop-v2", "goals": [ { "name": "cart", "match": { "pathPrefix": "/cart" }, "status": "2xx" } ] },
              "mirror": [ { "upstream": "shadow", "percent": 100, "compare": { "status": true, "latency": true } } ],
              "rollout": { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 1, "maxStepSeconds": 60,
                           "gates": { "maxErrorRate": 0.05, "minRequests": 20 } } }
            """#
        let json = routingConfig(
            upstreams: [("stable", stable), ("canary", pool("127.0.0.1:\(try port(canary, "canary"))")),
                        ("shadow", pool(shadow.endpoint)), ("checkout", checkout)],
            routes: [#"{ "name": "cart", "match": { "pathPrefix": "/cart" }, "upstream": "checkout" }"#, shop],
            controlSocket: try controlSocket(), admin: true)
        let proxy = try startProxy(json: json)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "control socket "), proxy.process.stderr)
        let admin = try adminPort(proxy)
        return (proxy, try ControlLineClient(path: try controlSocket()), admin)
    }

    /// A reload; traffic to `shop` until its rollout rolls back (the canary fails every request);
    /// a flip of `checkout` to its failing green, baked, seen by Prometheus, then traffic to
    /// `/cart` until the guard reverts it.
    private func makeTheEventsHappen(_ proxy: RunningProxy, _ control: ControlLineClient, _ prometheus: RealPrometheus) throws {
        XCTAssertEqual(try control.command("reload")["ok"] as? Bool, true)
        try drive(proxy, "/shop") { try control.command("show rollout shop")["state"] as? String == "rolled_back" }
        // Both variants' traffic goes on across scrapes (the canary's pinned by the override
        // header), so rates, ratios and quantiles have numbers.
        try drive(proxy, "/shop", ["X-Switchyard-Variant: canary"]) {
            try !prometheus.query("""
                increase(switchyard_requests_total{route="shop",variant="stable"}[5m]) > 0
                  and on () increase(switchyard_requests_total{route="shop",variant="canary"}[5m]) > 0
                """).series.isEmpty
        }

        let flip = try control.command("flip checkout --bake 60 --revert-if-error-rate 0.2 --min-requests 5")
        let id = try XCTUnwrap((flip["guard"] as? [String: Any])?["id"] as? Int, "\(flip)")
        let flipped = try waitForSeries(prometheus, #"switchyard_live_color{upstream="checkout",color="green"} == 1"#)
        XCTAssertFalse(flipped.series.isEmpty, "Prometheus did not see green live before the revert")
        try drive(proxy, "/cart") {
            let guards = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
            return guards.first { $0["id"] as? Int == id }?["state"] as? String == "reverted"
        }
    }

    /// Requests to `path`, 20 at a time (half of them with `pinned` header lines when given),
    /// until `done` holds (at most 30 s).
    private func drive(_ proxy: RunningProxy, _ path: String, _ pinned: [String] = [], until done: () throws -> Bool) throws {
        let held = try waitUntil(timeout: 30, interval: 0.01) {
            for i in 0..<20 { _ = try connect(proxy).exchange(get(path, i % 2 == 0 ? [] : pinned)) }
            return try done()
        }
        XCTAssertTrue(held, "traffic to \(path) did not bring its event within 30 s")
    }

    /// Whether a sample's `[time, "value"]` holds a finite number (not NaN from 0/0, not Inf).
    private static func isNumber(_ value: Any?) -> Bool {
        guard let text = (value as? [Any])?.last as? String, let number = Double(text) else { return false }
        return number.isFinite
    }

    /// Asks `expression` until it returns series (Prometheus scrapes every second) or fails.
    private func waitForSeries(_ prometheus: RealPrometheus, _ expression: String, timeout: Double = 20) throws -> RealPrometheus.Answer {
        var answer = try prometheus.query(expression)
        try waitUntil(timeout: timeout, interval: 0.2) {
            answer = try prometheus.query(expression)
            return answer.status != "success" || !answer.series.isEmpty
        }
        return answer
    }
}
