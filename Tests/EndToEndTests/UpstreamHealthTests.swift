// Active health checks and passive ejection through the real proxy: an endpoint failing its
// checks gets no traffic and comes back when they pass; a flapping one does not flap the pool;
// a pool with no healthy endpoint answers 503 at once (or fails open); /readyz says why; an
// endpoint failing requests is ejected for a time that doubles up to a cap; a dead shadow costs
// no copies.
import Foundation
import Glibc
import TestSupport
import XCTest

final class UpstreamHealthTests: EndToEndTestCase {
    private let fastCheck = #""healthCheck": { "intervalMs": 40, "timeoutMs": 40, "unhealthyAfter": 2, "healthyAfter": 2 }"#

    private func names(_ proxy: RunningProxy, count: Int) throws -> [String] {
        let client = try connect(proxy)
        return try (0..<count).map { i in try client.exchange(get("/\(i)")).header("X-Name") ?? "?" }
    }

    func testFailingChecksTakeAnEndpointOutAndPassingOnesBringItBack() throws {
        let stateA = Switchable()
        let a = try startSwitchable(stateA, name: "a")
        let b = try startSwitchable(Switchable(), name: "b")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(a.port)", "127.0.0.1:\#(b.port)"], \#(fastCheck) }"#),
        ], workers: 2))
        let admin = try adminPort(proxy)
        let healthy = "switchyard_endpoint_healthy" + endpointLabels(port: a.port)
        let transitions = "switchyard_endpoint_health_transitions_total" + endpointLabels(port: a.port)
        let passed = "switchyard_endpoint_health_checks_total{upstream=\"app\",color=\"default\",endpoint=\"127.0.0.1:\(a.port)\",result=\"pass\"}"
        try waitForMetrics(adminPort: admin) { $0[passed] >= 1 }

        stateA.setHealth(503)
        var m = try waitForMetrics(adminPort: admin, timeout: 10) { $0[healthy] == 0 }
        XCTAssertEqual(m[healthy], 0, "two failed checks take the endpoint out")
        XCTAssertEqual(m[transitions], 1)
        let servedBefore = stateA.servedCount
        XCTAssertEqual(Set(try names(proxy, count: 10)), ["b"], "an unhealthy endpoint gets no traffic")
        XCTAssertEqual(stateA.servedCount, servedBefore)

        stateA.setHealth(200)
        m = try waitForMetrics(adminPort: admin, timeout: 10) { $0[healthy] == 1 }
        XCTAssertEqual(m[healthy], 1, "two passed checks bring it back")
        XCTAssertEqual(m[transitions], 2)
        XCTAssertTrue(try names(proxy, count: 10).contains("a"), "traffic reaches it again")
    }

    func testAFlappingEndpointNeedsARunOfResultsToChangeState() throws {
        let stateA = Switchable()
        stateA.setHealthPattern([503, 200])   // never two results alike in a row
        let a = try startSwitchable(stateA, name: "a")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(a.port)"], \#(fastCheck) }"#),
        ]))
        let admin = try adminPort(proxy)
        let labels = endpointLabels(port: a.port).dropLast()
        let failed = "switchyard_endpoint_health_checks_total\(labels),result=\"fail\"}"
        var m = try waitForMetrics(adminPort: admin, timeout: 10) { $0[failed] >= 4 }
        XCTAssertGreaterThanOrEqual(m[failed], 4)
        XCTAssertEqual(m["switchyard_endpoint_health_transitions_total" + endpointLabels(port: a.port)], 0)
        XCTAssertEqual(m["switchyard_endpoint_healthy" + endpointLabels(port: a.port)], 1)

        // Down after two failures in a row; single passes between failures do not bring it back.
        stateA.setHealthPattern([503, 503, 200, 503])
        m = try waitForMetrics(adminPort: admin, timeout: 10) { $0[failed] >= 12 }
        XCTAssertEqual(m["switchyard_endpoint_health_transitions_total" + endpointLabels(port: a.port)], 1)
        XCTAssertEqual(m["switchyard_endpoint_healthy" + endpointLabels(port: a.port)], 0)
    }

    func testAPoolWithNoHealthyEndpointAnswers503AtOnceAndIsNotReady() throws {
        let stateA = Switchable()
        stateA.setHealth(500)
        let a = try startSwitchable(stateA, name: "a")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(a.port)"], \#(fastCheck) }"#),
        ]))
        let admin = try adminPort(proxy)
        try waitForMetrics(adminPort: admin, timeout: 10) { $0["switchyard_endpoint_healthy" + endpointLabels(port: a.port)] == 0 }
        let started = Date()
        let r = try connect(proxy).exchange(get("/"))
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "1")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(stateA.servedCount, 0, "nothing was sent to the unhealthy endpoint")
        let ready = try RawClient(port: admin).exchange("GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n")
        XCTAssertEqual(ready.status, 503)
        XCTAssertTrue(ready.bodyText.contains("upstream app has no healthy endpoint"), ready.bodyText)
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_no_healthy_endpoint_total{upstream=\"app\"}"], 1)

        stateA.setHealth(200)
        try waitForMetrics(adminPort: admin, timeout: 10) { $0["switchyard_endpoint_healthy" + endpointLabels(port: a.port)] == 1 }
        XCTAssertEqual(try RawClient(port: admin).exchange("GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n").status, 200)
        XCTAssertEqual(try connect(proxy).exchange(get("/")).status, 200)
    }

    func testFailOpenSendsToAnUnhealthyPool() throws {
        let stateA = Switchable()
        stateA.setHealth(500)
        let a = try startSwitchable(stateA, name: "a")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(a.port)"], \#(fastCheck), "failOpen": true, "affectsReadiness": false }"#),
        ]))
        let admin = try adminPort(proxy)
        try waitForMetrics(adminPort: admin, timeout: 10) { $0["switchyard_endpoint_healthy" + endpointLabels(port: a.port)] == 0 }
        let r = try connect(proxy).exchange(get("/"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("X-Name"), "a")
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_fail_open_total{upstream=\"app\"}"], 1)
        XCTAssertEqual(try RawClient(port: admin).exchange("GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n").status, 200,
                       "affectsReadiness: false")
    }

    /// `a` answers 500 to every request: each ejection lasts twice the one before (200, 400 ms),
    /// up to the cap (500 ms); a success after its return starts again from the base time.
    func testEjectionDoublesUpToTheCapAndASuccessResetsIt() throws {
        let stateA = Switchable()
        stateA.status = 500
        let a = try startSwitchable(stateA, name: "a")
        let b = try startSwitchable(Switchable(), name: "b")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"""
             { "endpoints": ["127.0.0.1:\#(a.port)", "127.0.0.1:\#(b.port)"],
               "outlierDetection": { "consecutiveFailures": 2, "baseEjectionTimeMs": 200, "maxEjectionTimeMs": 500, "count5xx": true } }
             """#),
        ]))
        let admin = try adminPort(proxy)
        let ejections = "switchyard_endpoint_ejections_total" + endpointLabels(port: a.port)
        let seconds = "switchyard_endpoint_ejection_seconds" + endpointLabels(port: a.port)
        let client = try connect(proxy)

        /// Sends requests one at a time until `a` has been ejected `count` times in all; the
        /// length of each new ejection, in ms. One request ejects at most once, and the
        /// counters are read after each.
        func drive(untilEjections count: Int) throws -> [Int] {
            var lengths: [Int] = []
            var seen = try metrics(adminPort: admin)[ejections]
            let deadline = Date(timeIntervalSinceNow: 20)
            while seen < count && Date() < deadline {
                _ = try client.exchange(get("/"))
                let text = try metrics(adminPort: admin).text
                let m = Metrics(text: text)
                if m[ejections] > seen {
                    seen = m[ejections]
                    let line = text.split(separator: "\n").first { $0.hasPrefix(seconds + " ") }
                    lengths.append(Int(((line.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) * 1000).rounded()))
                }
            }
            return lengths
        }
        XCTAssertEqual(try drive(untilEjections: 4), [200, 400, 500, 500])

        // Back from its ejection, a answers well once: the next ejection starts from the base.
        stateA.status = 200
        XCTAssertTrue(try waitUntil(timeout: 10) { try client.exchange(get("/")).header("X-Name") == "a" })
        stateA.status = 500
        XCTAssertEqual(try drive(untilEjections: 5), [200])
    }

    /// A shadow whose only endpoint refuses: after two failures it is ejected, and the copies
    /// for it are no longer even built (counted as skipped: the shadow was down).
    func testADeadShadowCostsNoCopiesOnceEjected() throws {
        let app = try startEcho(name: "app")
        let shadow = try refusingEndpoint()
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }"#
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", pool(app.endpoint)),
            ("shadow", #"{ "endpoints": ["\#(shadow)"], "outlierDetection": { "consecutiveFailures": 2, "baseEjectionTimeMs": 60000, "count5xx": true } }"#),
        ], routes: [route], workers: 2))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<30 { XCTAssertEqual(try client.exchange(get("/\(i)")).status, 200) }
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= 30 }
        XCTAssertGreaterThanOrEqual(m["switchyard_mirror_skipped_down_total{upstream=\"shadow\"}"], 26)
        XCTAssertLessThanOrEqual(m.mirrorSent, 4, "copies stop once the shadow is ejected")
        // Each loop tries the shadow again after a second; the second failure ejects it for a
        // minute, for every loop.
        let ejected = "switchyard_endpoint_ejected{upstream=\"shadow\",color=\"default\",endpoint=\"\(shadow)\"}"
        XCTAssertTrue(try waitUntil(timeout: 10, interval: 0.05) {
            _ = try client.exchange(get("/more"))
            return try metrics(adminPort: admin)[ejected] == 1
        })
        let sent = try metrics(adminPort: admin).mirrorSent
        for i in 0..<20 { XCTAssertEqual(try client.exchange(get("/after/\(i)")).status, 200) }
        let after = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= $0.mirrorSent }
        XCTAssertEqual(after.mirrorSent, sent, "no copy while the shadow is ejected")
        // Every copy ends with exactly one outcome, and those skipped while the shadow is ejected
        // are failures in the labelled series too (only the totals counted them).
        let copies = #"switchyard_mirror_copies_total{route="main",shadow="shadow",outcome="%@"}"#
        func outcome(_ o: String) -> Int { after[copies.replacingOccurrences(of: "%@", with: o)] }
        XCTAssertEqual(outcome("failed"), after["switchyard_mirror_failed_total"], after.text)
        XCTAssertEqual(outcome("completed") + outcome("failed") + outcome("dropped") + outcome("skipped"), after.mirrorOutcomes, after.text)
    }
}
