// /metrics per variant: answers by route, variant, upstream, status class and who made them;
// latency histograms; in flight per pool endpoint; the rollout state. Every answer is read with a
// strict exposition parser, checked by `promtool check metrics` when it is installed, and
// compared with `ctl show stats`.
import Foundation
import Glibc
import TestSupport
import XCTest

final class OutcomeMetricsTests: EndToEndTestCase {
    private func config(stable: String, canary: String, dead: String, socket: String) -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "upstreams": {
            "bg": { "blue": { "endpoints": ["\(stable)"] }, "green": { "endpoints": ["\(canary)"] }, "live": "blue" },
            "canary": { "endpoints": ["\(canary)"] },
            "other": { "endpoints": ["\(stable)"] },
            "dead": { "endpoints": ["\(dead)"] }
          },
          "routes": [
            { "name": "plain", "match": { "pathPrefix": "/plain" }, "upstream": "other" },
            { "name": "dead", "match": { "pathPrefix": "/dead" }, "upstream": "dead" },
            { "name": "shop", "match": { "host": "example.test" },
              "split": [ { "variant": "stable", "upstream": "bg", "weight": 70 },
                         { "variant": "canary", "upstream": "canary", "weight": 30 } ],
              "override": { "header": "X-Switchyard-Variant", "trustedSources": ["127.0.0.1/32"] } }
          ],
          "admin": { "address": "127.0.0.1:0" },
          "control": { "socket": "\(socket)" }
        }
        """
    }

    func testAnswersPerVariantLatencyAndRolloutStateParseStrictly() throws {
        let stable = try startEcho(name: "stable")
        let canary = try startEcho(name: "canary")
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startProxy(json: config(stable: stable.endpoint, canary: canary.endpoint, dead: try refusingEndpoint(),
                                                socket: socket))
        let adminPort = try adminPort(proxy)
        let client = try connect(proxy)
        for _ in 0..<3 { XCTAssertEqual(try client.exchange(get("/", ["X-Switchyard-Variant: stable"])).status, 200) }
        for _ in 0..<2 { XCTAssertEqual(try client.exchange(get("/", ["X-Switchyard-Variant: canary"])).status, 200) }
        XCTAssertEqual(try client.exchange(get("/plain?status=503")).status, 503)
        XCTAssertEqual(try client.exchange(get("/dead")).status, 502)
        XCTAssertEqual(try client.exchange(get("/", host: "nowhere.test")).status, 404)

        // Counted when each exchange finishes, which can be a moment after the client has its
        // answer.
        let last = try waitForMetrics(adminPort: adminPort) { m in
            (try? Exposition(m.text)).flatMap { $0.value("switchyard_requests_total", ["route": "-"]) } == 1
                && (try? Exposition(m.text))?.samples("switchyard_requests_total").reduce(0) { $0 + $1.value } == 8
        }
        let m = try Exposition(last.text)
        func requests(_ labels: [String: String]) -> Double? { m.value("switchyard_requests_total", labels) }
        XCTAssertEqual(requests(["route": "shop", "variant": "stable", "upstream": "bg", "code": "2xx", "source": "upstream"]), 3)
        XCTAssertEqual(requests(["route": "shop", "variant": "canary", "upstream": "canary", "code": "2xx", "source": "upstream"]), 2)
        XCTAssertEqual(requests(["route": "plain", "variant": "default", "upstream": "other", "code": "5xx", "source": "upstream"]), 1)
        XCTAssertEqual(requests(["route": "dead", "variant": "default", "upstream": "dead", "code": "5xx", "source": "proxy"]), 1)
        XCTAssertEqual(requests(["route": "-", "variant": "-", "upstream": "-", "code": "4xx", "source": "proxy"]), 1)
        XCTAssertEqual(m["switchyard_requests_total"]?.type, "counter")

        // Histograms: one per route/variant and per upstream/color, counts matching.
        XCTAssertEqual(m["switchyard_request_duration_seconds"]?.type, "histogram")
        XCTAssertEqual(m.value("switchyard_request_duration_seconds_count", ["route": "shop", "variant": "stable"]), 3)
        XCTAssertEqual(m.value("switchyard_request_duration_seconds_count", ["route": "shop", "variant": "canary"]), 2)
        XCTAssertEqual(m.value("switchyard_upstream_response_seconds_count", ["upstream": "bg", "color": "blue"]), 3)
        XCTAssertEqual(m.value("switchyard_upstream_response_seconds_count", ["upstream": "other", "color": "none"]), 1)
        XCTAssertNil(m.value("switchyard_upstream_response_seconds_count", ["upstream": "dead"]), "no upstream answered")
        let buckets = m.samples("switchyard_request_duration_seconds_bucket").filter { $0.labels["variant"] == "stable" }
        XCTAssertEqual(buckets.first?.labels["le"], "0.0005")
        XCTAssertEqual(buckets.dropLast().last?.labels["le"], "30")
        XCTAssertGreaterThan(m.value("switchyard_request_duration_seconds_sum", ["route": "shop", "variant": "stable"]) ?? 0, 0)

        // Two pools sharing an address are two series.
        let inFlight = m.samples("switchyard_endpoint_in_flight").filter { $0.labels["endpoint"] == stable.endpoint }
        XCTAssertEqual(Set(inFlight.map { "\($0.labels["upstream"]!)/\($0.labels["color"]!)" }), ["bg/blue", "other/none"])

        // The rollout state.
        XCTAssertEqual(m.value("switchyard_route_weight", ["route": "shop", "variant": "stable"]), 70)
        XCTAssertEqual(m.value("switchyard_route_weight", ["route": "plain", "variant": "default"]), 100)
        XCTAssertEqual(m.value("switchyard_live_color", ["upstream": "bg", "color": "blue"]), 1)
        XCTAssertEqual(m.value("switchyard_live_color", ["upstream": "bg", "color": "green"]), 0)
        XCTAssertEqual(m.value("switchyard_snapshot_version"), 1)
        XCTAssertEqual(m.samples("switchyard_build_info").count, 1)
        XCTAssertEqual(m.value("switchyard_config_reloads_total", ["result": "applied"]), 0)

        // A flip shows at once.
        let flip = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "flip", "bg"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        let after = try Exposition(try metrics(adminPort: adminPort).text)
        XCTAssertEqual(after.value("switchyard_live_color", ["upstream": "bg", "color": "green"]), 1)
        XCTAssertEqual(after.value("switchyard_snapshot_version"), 2)

        // `show stats` answers the same numbers.
        let stats = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "--json", "show", "stats"])
        XCTAssertEqual(stats.termination, .exited(0), stats.stderr)
        let reply = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        let outcomes = try XCTUnwrap(reply["outcomes"] as? [[String: Any]])
        let stableRow = outcomes.first { $0["variant"] as? String == "stable" && $0["code"] as? String == "2xx" }
        XCTAssertEqual(stableRow?["requests"] as? Int, 3)
        let deadRow = outcomes.first { $0["route"] as? String == "dead" }
        XCTAssertEqual(deadRow?["source"] as? String, "proxy")
        let latency = try XCTUnwrap(reply["latency"] as? [[String: Any]])
        XCTAssertEqual(latency.first { $0["variant"] as? String == "canary" }?["count"] as? Int, 2)

        try checkWithPromtool(last.text)
    }

    func testParserRejectsWhatPrometheusWould() throws {
        // The reader is strict: each of these must fail, or the checks above prove little.
        let bad = [
            "x 1\n",   // no HELP/TYPE
            "# HELP x h\n# TYPE x counter\nx 1\nx 2\n",   // repeated series
            "# HELP x h\n# TYPE x counter\nx{a=\"b\\q\"} 1\n",   // bad escape
            "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",   // not cumulative
            "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",   // +Inf != count
            "# HELP x h\n# TYPE x counter\nx 1\n# HELP y h\n# TYPE y counter\ny 1\nx{a=\"1\"} 1\n",   // family split
        ]
        for text in bad { XCTAssertThrowsError(try Exposition(text), text) }
        let good = try Exposition("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"uo\\\\te\\nnl\"} 1\n")
        XCTAssertEqual(good.samples("x").first?.labels["a"], "q\"uo\\te\nnl")
    }

    func testDemoServesMetricsAndPrintsTheirURL() throws {
        let (fd, port) = try Sockets.bound(listen: false)
        Glibc.close(fd)
        let demo = adopt(try ChildProcess(switchyard: ["demo", "--port", String(port)]))
        guard let line = demo.waitForStdoutLine(where: { $0.contains("metrics: http://") }),
              let adminPort = Self.port(after: "metrics: http://", in: line.replacingOccurrences(of: "/metrics", with: "")) else {
            return XCTFail("no metrics URL in the demo's output: \(demo.stdout)")
        }
        let c = try RawClient(port: port, timeout: 5)
        XCTAssertEqual(try c.exchange(get("/")).status, 200)
        let text = try waitForMetrics(adminPort: adminPort) { $0.text.contains("switchyard_requests_total{route=\"shop\"") }.text
        let m = try Exposition(text)
        XCTAssertEqual(m.value("switchyard_route_weight", ["route": "shop", "variant": "canary"]), 10)
        demo.send(signal: SIGTERM)
        XCTAssertEqual(demo.waitForExit(), .exited(0))
    }

    /// `promtool check metrics` (Prometheus's own linter) on the text, when it is installed.
    private func checkWithPromtool(_ text: String) throws {
        guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("promtool not installed: `promtool check metrics` skipped")
            return
        }
        let path = try writeFile("metrics.txt", text)
        let p = adopt(try ChildProcess(executable: "/bin/sh", arguments: ["-c", "\(promtool) check metrics < \(path)"]))
        XCTAssertEqual(p.waitForExit(timeout: 20), .exited(0), "promtool: \(p.stdout)\(p.stderr)")
    }
}
