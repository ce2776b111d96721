// The upstream keys for health checks, ejection, retries and limits: each is read into the
// snapshot's policy, and each bad value is rejected with its key path.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class UpstreamPolicyConfigTests: XCTestCase {
    private func upstream(_ members: String) -> String {
        Doc.make(upstreams: "{ \"app\": { \"endpoints\": [\"127.0.0.1:9001\"], \(members) } }")
    }

    func testEveryKeyIsReadIntoThePolicy() throws {
        let text = upstream(#"""
            "healthCheck": { "path": "/ready", "intervalMs": 500, "timeoutMs": 200, "unhealthyAfter": 4, "healthyAfter": 1,
                             "expectStatus": ["2xx", "301"], "hostHeader": "app.internal" },
            "failOpen": true,
            "outlierDetection": { "consecutiveFailures": 7, "baseEjectionTimeMs": 1000, "maxEjectionTimeMs": 8000 },
            "retries": { "attempts": 3, "on": ["connect", "reset", "503"], "budgetPercent": 25, "minRetries": 1 },
            "maxConnections": 10, "maxPending": 5, "affectsReadiness": false
            """#)
        let policy = try XCTUnwrap(parse(text)).config.upstreams[0].policy
        let check = try XCTUnwrap(policy.healthCheck)
        XCTAssertEqual(check.path, "/ready")
        XCTAssertEqual(check.intervalMs, 500)
        XCTAssertEqual(check.timeoutMs, 200)
        XCTAssertEqual(check.unhealthyAfter, 4)
        XCTAssertEqual(check.healthyAfter, 1)
        XCTAssertEqual(check.hostHeader, "app.internal")
        XCTAssertTrue(check.passes(204))
        XCTAssertTrue(check.passes(301))
        XCTAssertFalse(check.passes(302))
        XCTAssertFalse(check.passes(500))
        XCTAssertTrue(policy.failOpen)
        XCTAssertFalse(policy.affectsReadiness)
        XCTAssertEqual(policy.outlierDetection.consecutiveFailures, 7)
        XCTAssertEqual(policy.outlierDetection.ejectionMs(level: 1), 1000)
        XCTAssertEqual(policy.outlierDetection.ejectionMs(level: 3), 4000)
        XCTAssertEqual(policy.outlierDetection.ejectionMs(level: 5), 8000, "capped at maxEjectionTimeMs")
        XCTAssertEqual(policy.retries.attempts, 3)
        XCTAssertTrue(policy.retries.onConnect)
        XCTAssertTrue(policy.retries.onReset)
        XCTAssertTrue(policy.retries.retries(status: 503))
        XCTAssertFalse(policy.retries.retries(status: 502))
        XCTAssertEqual(policy.retries.budgetPercent, 25)
        XCTAssertEqual(policy.retries.minRetries, 1)
        XCTAssertEqual(policy.maxConnections, 10)
        XCTAssertEqual(policy.maxPending, 5)
    }

    func testDefaults() throws {
        let policy = try XCTUnwrap(parse(upstream(#""retries": {}"#))).config.upstreams[0].policy
        XCTAssertNil(policy.healthCheck)
        XCTAssertFalse(policy.failOpen)
        XCTAssertEqual(policy.outlierDetection, OutlierDetection())
        XCTAssertEqual(policy.retries.attempts, 2)
        XCTAssertTrue(policy.retries.onConnect)
        XCTAssertFalse(policy.retries.onReset)
        XCTAssertEqual(policy.retries.budgetPercent, 20)
        let plain = try XCTUnwrap(parse(Doc.make())).config.upstreams[0].policy
        XCTAssertEqual(plain.retries, RetryPolicy.connectOnly)
        let off = try XCTUnwrap(parse(upstream(#""outlierDetection": false"#))).config.upstreams[0].policy
        XCTAssertFalse(off.outlierDetection.enabled)
    }

    func testAColorHasItsOwnCheck() throws {
        let text = Doc.make(upstreams: #"""
            { "app": { "healthCheck": { "path": "/a" },
                       "blue": { "endpoints": ["127.0.0.1:9001"], "healthCheck": { "path": "/b" } },
                       "green": { "endpoints": ["127.0.0.1:9002"] }, "live": "blue" } }
            """#)
        let config = try XCTUnwrap(parse(text)).config
        let policy = config.upstreams[0].policy
        XCTAssertEqual(policy.healthCheck(.blue)?.path, "/b")
        XCTAssertEqual(policy.healthCheck(.green)?.path, "/a")
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.upstreams[0].policy, policy, "the snapshot carries the policy")
    }

    func testBadValuesNameTheirKey() {
        assertError(upstream(#""healthCheck": { "path": "healthz" }"#), "upstreams.app.healthCheck.path")
        assertError(upstream(#""healthCheck": { "intervalMs": 100, "timeoutMs": 500 }"#), "must not exceed intervalMs")
        assertError(upstream(#""healthCheck": { "expectStatus": "2xy" }"#), "expected a status class")
        assertError(upstream(#""healthCheck": { "every": 1 }"#), "upstreams.app.healthCheck.every: unknown key")
        assertError(upstream(#""retries": { "on": ["timeout"] }"#), "upstreams.app.retries.on[0]")
        assertError(upstream(#""retries": { "attempts": 0 }"#), "upstreams.app.retries.attempts")
        assertError(upstream(#""retries": { "budgetPercent": 101 }"#), "upstreams.app.retries.budgetPercent")
        assertError(upstream(#""outlierDetection": { "baseEjectionTimeMs": 5000, "maxEjectionTimeMs": 1000 }"#),
                    "must be at least baseEjectionTimeMs")
        assertError(upstream(#""maxPending": 3"#), "upstreams.app.maxPending: needs \"maxConnections\"")
        assertError(upstream(#""failOpen": "yes""#), "upstreams.app.failOpen")
        assertError(Doc.make(upstreams: #"""
            { "app": { "blue": { "endpoints": ["127.0.0.1:9001"], "healthCheck": { "path": 1 } },
                       "green": { "endpoints": ["127.0.0.1:9002"] }, "live": "blue" } }
            """#), "upstreams.app.blue.healthCheck.path")
    }
}
