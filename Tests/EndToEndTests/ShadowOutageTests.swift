// A shadow endpoint that goes away is taken out at once by the loop that sees it refuse: no
// copy is dialled to it until it is known back (a health check passes, or a probe connects),
// and back, it takes every copy again, with no lingering penalty.
import Foundation
import TestSupport
import XCTest

final class ShadowOutageTests: EndToEndTestCase {
    func testAStoppedShadowIsTakenOutAtOnceAndTakesEveryCopyWhenBack() throws {
        let app = try startEcho(name: "app")
        let first = try startSwitchable(Switchable(), name: "shadow")
        let port = first.port
        // Checks every 50 ms that never take the endpoint out (unhealthyAfter 1000) and no
        // ejection: what stops the copies is the loop's own mark, and a passing check lifts it.
        let shadowUpstream = #"""
            { "endpoints": ["127.0.0.1:\#(port)"], "maxInFlight": 1000, "outlierDetection": false,
              "healthCheck": { "path": "/healthz", "intervalMs": 50, "timeoutMs": 50, "unhealthyAfter": 1000, "healthyAfter": 1 } }
            """#
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }"#
        let proxy = try startProxy(json: policyConfig(upstreams: [("app", pool(app.endpoint)), ("shadow", shadowUpstream)],
                                                      routes: [route], workers: 1))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<10 { XCTAssertEqual(try client.exchange(get("/before/\(i)")).status, 200) }
        XCTAssertEqual(try waitForMetrics(adminPort: admin) { $0.mirrorCompleted == 10 }.mirrorCompleted, 10)

        first.stop()
        let skippedDown = "switchyard_mirror_skipped_down_total{upstream=\"shadow\"}"
        let before = try metrics(adminPort: admin)
        // A stream of mirrored requests for three seconds: a refusal used to hold copies back
        // for one second only, after which the next copy was dialled again.
        var sent = 0
        let started = Date()
        while Date().timeIntervalSince(started) < 3 {
            XCTAssertEqual(try client.exchange(get("/down/\(sent)")).status, 200, "the primary never notices")
            sent += 1
        }
        let down = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes - before.mirrorOutcomes >= sent }
        XCTAssertEqual(down.mirrorOutcomes - before.mirrorOutcomes, sent, down.text)
        let failed = down["switchyard_mirror_failed_total"] - before["switchyard_mirror_failed_total"]
        let skipped = down[skippedDown] - before[skippedDown]
        XCTAssertEqual(failed, sent, "every copy failed while the shadow was away")
        XCTAssertLessThanOrEqual(failed - skipped, 2, "copies dialled to the stopped shadow, of \(sent): \(down.text)")

        // The shadow listens on its port again; one passing check and it takes every copy.
        var second: RawServer?
        XCTAssertTrue(waitUntil { second = try? self.startSwitchable(Switchable(), name: "shadow", port: port); return second != nil },
                      "listening on \(port) again")
        let back = try XCTUnwrap(second)
        let passed = "switchyard_endpoint_health_checks_total{upstream=\"shadow\",color=\"default\",endpoint=\"127.0.0.1:\(port)\",result=\"pass\"}"
        let checked = try metrics(adminPort: admin)[passed]
        try waitForMetrics(adminPort: admin) { $0[passed] > checked }
        let resumed = try metrics(adminPort: admin)
        for i in 0..<50 { XCTAssertEqual(try client.exchange(get("/back/\(i)")).status, 200) }
        let after = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes - resumed.mirrorOutcomes >= 50 }
        XCTAssertEqual(after.mirrorCompleted - resumed.mirrorCompleted, 50, "every copy answered once the shadow is back: \(after.text)")
        XCTAssertEqual(back.recordedHeads.count, 50)
    }
}
