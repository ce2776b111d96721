// `routes[].rollout`: the accepted shapes (preset, explicit steps, gates, window, startAt,
// gateSource) and every refusal with its key path; the state file keeps a rollout's status.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
@testable import Runtime
import XCTest

final class RolloutConfigTests: XCTestCase {
    static func doc(_ rollout: String) -> String {
        Doc.route(#"""
            "split": [ { "variant": "stable", "upstream": "app", "weight": 100 },
                       { "variant": "canary", "upstream": "api-v2", "weight": 0 } ],
            "rollout": \#(rollout)
            """#)
    }

    func testAcceptedShapes() throws {
        let full = parse(Self.doc(#"""
            { "variant": "canary", "steps": [1, 5, 25, 50, 100], "stepSeconds": 300, "maxStepSeconds": 1800,
              "gates": { "maxErrorRate": 0.01, "maxErrorRateRatio": 2.0, "maxP99Ratio": 1.5, "minRequests": 100 },
              "baseline": "stable", "window": { "start": "02:00", "end": "05:00", "timeZone": "UTC" },
              "startAt": "2026-03-01T02:00:00Z", "gateSource": { "prometheus": "http://prometheus:9090" } }
            """#))
        let plan = try XCTUnwrap(full?.config.routes.first?.rollout)
        XCTAssertEqual(plan.steps, [1, 5, 25, 50, 100])
        XCTAssertEqual(plan.stepSeconds, 300)
        XCTAssertEqual(plan.maxStepSeconds, 1800)
        XCTAssertEqual(plan.gates, RolloutGates(maxErrorRate: 0.01, maxErrorRateRatio: 2, maxP99Ratio: 1.5, minRequests: 100))
        XCTAssertEqual(plan.window, RolloutWindow(start: 120, end: 300, timeZone: "UTC"))
        XCTAssertEqual(plan.startAt, 1_772_330_400)
        XCTAssertEqual(plan.prometheus, "http://prometheus:9090")
        let preset = try XCTUnwrap(parse(Self.doc(#"{ "variant": "canary", "preset": "linear-10-1m" }"#))?.config.routes.first?.rollout)
        XCTAssertEqual(preset.steps.count, 10)
        XCTAssertEqual(preset.stepSeconds, 60)
        XCTAssertEqual(preset.baseline, "stable", "the other variant by default")
    }

    func testRefusalsNameTheKeyPath() {
        let table: [(String, String)] = [
            (#"{ "variant": "canray", "preset": "all-at-once" }"#, #"routes[0].rollout.variant: unknown variant "canray" (did you mean "canary"?)"#),
            (#"{ "variant": "canary" }"#, #"routes[0].rollout: needs "steps" or "preset""#),
            (#"{ "variant": "canary", "steps": [10, 100], "preset": "all-at-once" }"#, #"routes[0].rollout: has both "steps" and "preset""#),
            (#"{ "variant": "canary", "preset": "canary-10-6m" }"#, #"routes[0].rollout.preset: unknown preset "canary-10-6m""#),
            (#"{ "variant": "canary", "steps": [50, 10] }"#, "routes[0].rollout.steps: steps must increase"),
            (#"{ "variant": "canary", "steps": [10, 150] }"#, "routes[0].rollout.steps[1]: must be between 1 and 100, got 150"),
            (#"{ "variant": "canary", "steps": [100], "stepSeconds": 60, "maxStepSeconds": 30 }"#,
             "routes[0].rollout.maxStepSeconds: must be at least stepSeconds (60), got 30"),
            (#"{ "variant": "canary", "steps": [100], "gates": { "maxErrorRate": 2 } }"#, "routes[0].rollout.gates.maxErrorRate: must be a share from 0 to 1"),
            (#"{ "variant": "canary", "steps": [100], "gates": { "maxP99Ratio": 0 } }"#, "routes[0].rollout.gates.maxP99Ratio: must be greater than 0"),
            (#"{ "variant": "canary", "steps": [100], "gates": { "maxErrors": 1 } }"#, "routes[0].rollout.gates.maxErrors: unknown key"),
            (#"{ "variant": "canary", "steps": [100], "baseline": "canary" }"#, "routes[0].rollout.baseline: must be another variant"),
            (#"{ "variant": "canary", "steps": [100], "window": { "start": "2am", "end": "05:00" } }"#,
             #"routes[0].rollout.window.start: "2am" is not a time like "02:00""#),
            (#"{ "variant": "canary", "steps": [100], "window": { "start": "02:00", "end": "05:00", "timeZone": "Mars/Base" } }"#,
             #"routes[0].rollout.window.timeZone: unknown time zone "Mars/Base""#),
            (#"{ "variant": "canary", "steps": [100], "startAt": "tomorrow" }"#, #"routes[0].rollout.startAt: "tomorrow" is not an RFC 3339 time"#),
            (#"{ "variant": "canary", "steps": [100], "gateSource": { "prometheus": "ftp://p:9090" } }"#,
             #"routes[0].rollout.gateSource.prometheus: "ftp://p:9090" is not an http:// or https://HOST:PORT URL"#),
            (#"{ "variant": "canary", "steps": [100], "gateSource": { "prometheus": "https://p", "caFile": "/nonexistent/ca.pem" } }"#,
             #"routes[0].rollout.gateSource.caFile: cannot read "/nonexistent/ca.pem""#),
            (#"{ "variant": "canary", "steps": [100], "gateSource": { "prometheus": "http://p", "caFile": "/etc/hostname" } }"#,
             #"routes[0].rollout.gateSource.caFile: a CA file verifies an https:// Prometheus; "prometheus" is not one"#),
            (#"{ "variant": "canary", "steps": [100], "stepsSeconds": 5 }"#, #"routes[0].rollout.stepsSeconds: unknown key (did you mean "stepSeconds"?)"#),
            (#"{ "variant": "canary", "steps": [100], "shadow": { "percent": 0 } }"#, "routes[0].rollout.shadow.percent: must be above 0 and at most 100"),
            (#"{ "variant": "canary", "steps": [100], "shadow": { "minMatchRate": 1.5 } }"#, "routes[0].rollout.shadow.minMatchRate: must be a share"),
            (#"{ "variant": "canary", "steps": [100], "shadow": { "upstream": "ap" } }"#, #"routes[0].rollout.shadow.upstream: unknown upstream "ap""#),
            (#"{ "variant": "canary", "steps": [100], "shadow": { "upstream": "app" } }"#,
             #"routes[0].rollout.shadow: the shadow upstream "app" serves the route's users"#),
            (#"{ "variant": "canary", "steps": [100], "shadow": { "methods": [] } }"#, "routes[0].rollout.shadow.methods: must list at least one method"),
            (#"{ "variant": "canary", "steps": [100], "startAt": "2030-01-01T00:00:00Z", "shadow": {} }"#,
             #"routes[0].rollout.shadow: not with "startAt""#),
        ]
        for (rollout, fragment) in table { assertError(Self.doc(rollout), fragment) }
        assertError(Doc.route(#""upstream": "app", "rollout": { "variant": "canary", "steps": [100] }"#),
                    #"routes[0].rollout: needs a route with a "split""#)
    }

    func testAShadowStageDefaultsToTheVariantsUpstream() throws {
        let config = try XCTUnwrap(parse(Self.doc(#"{ "variant": "canary", "steps": [10, 100], "shadow": { "maxP99Ratio": 2 } }"#))?.config)
        let shadow = try XCTUnwrap(config.routes[0].rollout?.shadow)
        XCTAssertEqual(shadow, RolloutShadowPlan(upstream: "api-v2", percent: 100, minCompared: 1000, minMatchRate: 0.995,
                                                 maxP99Ratio: 2, maxSeconds: 1800))
    }

    func testPrometheusTargets() {
        let table: [(String, PrometheusQuery.Target?)] = [
            ("http://prometheus:9090", .init(host: "prometheus", port: 9090, prefix: "")),
            ("http://[::1]:9090/prom/", .init(host: "::1", port: 9090, prefix: "/prom")),
            ("http://p", .init(host: "p", port: 80, prefix: "")),
            ("https://p:9090", .init(host: "p", port: 9090, prefix: "", secure: true)),
            ("https://p/prom", .init(host: "p", port: 443, prefix: "/prom", secure: true)),
            ("ftp://p:9090", nil), ("https://:9090", nil), ("http://:9090", nil), ("http://p:0", nil), ("http://p:x", nil),
        ]
        for (url, expected) in table { XCTAssertEqual(PrometheusQuery.Target(url: url), expected, url) }
    }

    func testStateFileKeepsTheRolloutAndDropsItWithItsRoute() throws {
        let config = try XCTUnwrap(parse(Self.doc(#"{ "variant": "canary", "steps": [10, 100] }"#))?.config)
        var status = RolloutStatus(plan: config.routes[0].rollout!, origin: "config", now: 0, reading: RolloutReading())
        _ = status.tick(now: 0, reading: RolloutReading())
        var overrides = Overrides()
        overrides.apply(.weights(route: "r", weights: [.init(variant: "canary", weight: 10), .init(variant: "stable", weight: 90)]))
        overrides.rollouts["r"] = status
        let decoded = try JSONDecoder().decode(Overrides.self, from: JSONEncoder().encode(overrides))
        XCTAssertEqual(decoded, overrides)
        XCTAssertEqual(decoded.applied(to: config).kept.rollouts["r"]?.weight, 10)
        var gone = config
        gone.routes[0].split = Config.Split(variants: [Config.Variant(name: "stable", upstream: "app", weight: 1)])
        XCTAssertNil(decoded.applied(to: gone).kept.rollouts["r"], "a rollout whose variant is gone is dropped")
        overrides.apply(.reset(name: "r"))
        XCTAssertTrue(overrides.rollouts.isEmpty, "reset drops the route's rollout")
        // A state file written before rollouts existed still loads.
        let old = try JSONDecoder().decode(Overrides.self, from: Data(#"{"live":{},"weights":{}}"#.utf8))
        XCTAssertTrue(old.rollouts.isEmpty)
    }
}
