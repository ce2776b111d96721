// Outlier detection never empties a pool by itself: at most `maxEjectionPercent` of a pool is
// ejected at once (one endpoint always may be), and when nothing passes, an endpoint that is
// only ejected is tried again (panic) before the pool answers 503.
import Foundation
import TestSupport
import XCTest

final class EjectionLimitTests: EndToEndTestCase {
    private func ejected(_ m: Metrics, _ upstream: String, _ port: UInt16) -> Int {
        m[#"switchyard_endpoint_ejected{upstream="\#(upstream)",color="default",endpoint="127.0.0.1:\#(port)"}"#]
    }

    /// Sends requests until the endpoint on `port` of `upstream` is ejected.
    private func driveUntilEjected(_ client: RawClient, admin: UInt16, _ upstream: String, _ port: UInt16) throws -> Bool {
        try waitUntil(timeout: 10, interval: 0.01) {
            _ = try client.exchange(get("/"))
            return ejected(try metrics(adminPort: admin), upstream, port) == 1
        }
    }

    /// Two endpoints failing in turn (as in a soak where they were killed 9 s apart): the second
    /// is not ejected while the first still is, so the pool never answers "no healthy endpoint".
    func testASecondEndpointIsNotEjectedWhileTheFirstIs() throws {
        let stateA = Switchable(), stateB = Switchable()
        let a = try startSwitchable(stateA, name: "a")
        let b = try startSwitchable(stateB, name: "b")
        let od = #""outlierDetection": { "consecutiveFailures": 2, "baseEjectionTimeMs": 60000, "count5xx": true }"#
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("canary", #"{ "endpoints": ["127.0.0.1:\#(a.port)", "127.0.0.1:\#(b.port)"], \#(od) }"#)]))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        stateA.status = 500
        XCTAssertTrue(try driveUntilEjected(client, admin: admin, "canary", a.port))
        // a is back but stays ejected for a minute; now b fails.
        stateA.status = 200
        stateB.status = 500
        var statuses: [Int] = []
        for _ in 0..<12 { statuses.append(try client.exchange(get("/")).status) }
        XCTAssertFalse(statuses.contains(503), "the pool never ran out of endpoints: \(statuses)")
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(ejected(m, "canary", b.port), 0, "b stays in: half of the pool is already out")
        XCTAssertEqual(ejected(m, "canary", a.port), 1)
    }

    /// A pool whose one endpoint is ejected: the next request goes to it anyway (panic) and
    /// gets its answer, instead of 503 for the rest of the ejection.
    func testAnEjectedEndpointIsTriedWhenNothingElseIsLeft() throws {
        let state = Switchable()
        let only = try startSwitchable(state, name: "only")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("single", #"{ "endpoints": ["127.0.0.1:\#(only.port)"], "outlierDetection": { "consecutiveFailures": 2, "baseEjectionTimeMs": 60000, "count5xx": true } }"#)]))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        state.status = 500
        XCTAssertTrue(try driveUntilEjected(client, admin: admin, "single", only.port))
        state.status = 200
        let r = try client.exchange(get("/"))
        XCTAssertEqual(r.status, 200, "panic: the ejected endpoint answers")
        let m = try metrics(adminPort: admin)
        XCTAssertGreaterThanOrEqual(m[#"switchyard_upstream_panic_total{upstream="single"}"#], 1, m.text)
    }
}
