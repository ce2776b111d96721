// Numbers from outside the process never trap: a Prometheus answer of NaN, +Inf or 1e30, a
// control argument of 2^64-1, a state file whose rollout step or clock is out of range. Each
// is refused with a reason (or makes a reading invalid) and the proxy goes on.
import Foundation
import Glibc
@testable import CommandSocket
@testable import Config
@testable import Rollouts
@testable import Runtime
import XCTest

final class OutsideNumbersTests: XCTestCase {
    typealias Sample = PrometheusQuery.Sample

    private func answer(_ values: [String], le: [String]? = nil) -> [UInt8] {
        let result = values.enumerated().map { i, v in
            let metric = le.map { "{\"le\":\"\($0[i])\"}" } ?? "{}"
            return "{\"metric\":\(metric),\"value\":[1700000000.5,\"\(v)\"]}"
        }.joined(separator: ",")
        let body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[\(result)]}}"
        return Array("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n\(body)".utf8)
    }

    // MARK: Prometheus answers

    func testAValueThatIsNotACountMakesTheReadingInvalid() throws {
        for bad in ["NaN", "+Inf", "-Inf", "1e30", "-1", "12.5", "18446744073709551616", "not a number"] {
            let samples = try PrometheusQuery.samples(answer: answer([bad]))
            for (requests, errors, cumulative) in [(samples, [Sample](), [Sample]()), ([], [], []), ([], samples, [])]
                where !(requests.isEmpty && errors.isEmpty && cumulative.isEmpty) {
                XCTAssertThrowsError(try PrometheusQuery.counts(requests: requests, errors: errors, cumulative: cumulative), bad) {
                    let failure = $0 as? PrometheusQuery.Failure
                    XCTAssertEqual(failure?.invalidReading, true, bad)
                    XCTAssertTrue(failure?.description.contains("is not a count") ?? false, "\(String(describing: failure))")
                }
            }
            let buckets = try PrometheusQuery.samples(answer: answer(["1", bad], le: ["0.1", "+Inf"]))
            XCTAssertThrowsError(try PrometheusQuery.counts(requests: [], errors: [], cumulative: buckets), "bucket \(bad)") {
                XCTAssertEqual(($0 as? PrometheusQuery.Failure)?.invalidReading, true)
            }
        }
    }

    func testValidCountsAndTheirChecks() throws {
        let requests = try PrometheusQuery.samples(answer: answer(["120"]))
        let errors = try PrometheusQuery.samples(answer: answer(["6"]))
        let buckets = try PrometheusQuery.samples(answer: answer(["100", "90", "120"], le: ["0.1", "0.05", "+Inf"]))
        let c = try PrometheusQuery.counts(requests: requests, errors: errors, cumulative: buckets)
        XCTAssertEqual(c.requests, 120)
        XCTAssertEqual(c.errors, 6)
        XCTAssertEqual(c.buckets.reduce(0, +), 120)
        XCTAssertEqual(c.quantile(0.99, bounds: RolloutLatency.boundsSeconds), .infinity)
        // More 5xx than requests, two series where sum() gives one: fake series, not counts.
        XCTAssertThrowsError(try PrometheusQuery.counts(requests: errors, errors: requests, cumulative: [])) {
            XCTAssertEqual(($0 as? PrometheusQuery.Failure)?.invalidReading, true)
        }
        XCTAssertThrowsError(try PrometheusQuery.counts(requests: requests + requests, errors: [], cumulative: [])) {
            XCTAssertEqual(($0 as? PrometheusQuery.Failure)?.invalidReading, true)
        }
        // Not a query answer at all: invalid too; a refused request is a failure, not a reading.
        XCTAssertThrowsError(try PrometheusQuery.samples(answer: Array("HTTP/1.0 200 OK\r\n\r\n{\"status\":\"error\"}".utf8))) {
            XCTAssertEqual(($0 as? PrometheusQuery.Failure)?.invalidReading, true)
        }
        XCTAssertThrowsError(try PrometheusQuery.samples(answer: Array("HTTP/1.0 503 Unavailable\r\n\r\n".utf8))) {
            XCTAssertEqual(($0 as? PrometheusQuery.Failure)?.invalidReading, false)
        }
    }

    func testQuantileOfSaturatedBucketsDoesNotTrap() {
        let c = VariantCounts(requests: .max, errors: 0, buckets: [.max, .max, 1])
        XCTAssertEqual(c.quantile(0.99, bounds: [0.1, 0.2]), 0.1)
        XCTAssertEqual(c.since(VariantCounts(requests: 1, buckets: [.max])).buckets, [0, .max, 1])
    }

    func testSelectorsAreLabelMatchersOnly() {
        for good in [#"job="switchyard""#, #"job="switchyard",namespace="prod""#, #" job = "a" , env=~"prod|eu-.*" "#,
                     #"env!="dev",team!~"x\\.y""#, #"a="quote \" inside""#, #"a="{}""#] {
            XCTAssertNil(PrometheusQuery.selectorProblem(good), good)
        }
        let bad: [(String, String)] = [
            ("", "expected a label name"), (#"job="a"}"#, "expected a comma"), (#"job="a"} or vector(1e30) or x{a="b""#, "expected a comma"),
            (#"job="unclosed"#, "not closed"), (#"job=switchyard"#, "double-quoted"), (#"job='a'"#, "double-quoted"),
            (#"job=="a""#, "\"==\""), (#"job="a",,"#, "expected a label name"), (#"job="a","#, "expected a label name"),
            (#"route="x""#, "set by the queries"), (#"le="1""#, "set by the queries"), (#"{job="a"}"#, "expected a label name"),
            ("job=\"a\nb\"", "control character"), (#"job="a\x41""#, "escapes"), (#"1job="a""#, "expected a label name"),
        ]
        for (selector, fragment) in bad {
            let problem = PrometheusQuery.selectorProblem(selector)
            XCTAssertTrue(problem?.contains(fragment) ?? false, "\(selector): \(problem ?? "accepted")")
        }
    }

    func testBearerTokensCannotBreakTheHead() {
        XCTAssertNil(PrometheusQuery.tokenProblem(Array("eyJhbGciOi.abc-_~+/=".utf8)))
        for bad in ["", "a b", "a\r\nX-Evil: 1", "tab\there", "caf\u{e9}"] {
            XCTAssertNotNil(PrometheusQuery.tokenProblem(Array(bad.utf8)), bad)
        }
    }

    // MARK: Config

    func testGateSourceKeys() throws {
        let dir = try temporaryDirectory()
        let token = dir + "/token"
        try Data("s3cret-token\n".utf8).write(to: URL(fileURLWithPath: token))
        chmod(token, 0o600)
        let plan = try XCTUnwrap(parse(RolloutConfigTests.doc(#"""
            { "variant": "canary", "steps": [100], "gateSource": { "prometheus": "http://p:9090",
              "selector": "job=\"edge\",env=\"prod\"", "bearerTokenFile": "\#(token)", "maxInvalidReadings": 5 } }
            """#))?.config.routes.first?.rollout)
        XCTAssertEqual(plan.prometheusSelector, #"job="edge",env="prod""#)
        XCTAssertEqual(plan.prometheusBearerTokenFile, token)
        XCTAssertEqual(plan.maxInvalidReadings, 5)
        XCTAssertEqual(try RolloutRunner.bearerToken(plan), "s3cret-token")
        let defaults = try XCTUnwrap(parse(RolloutConfigTests.doc(#"""
            { "variant": "canary", "steps": [100], "gateSource": { "prometheus": "http://p:9090" } }
            """#))?.config.routes.first?.rollout)
        XCTAssertNil(defaults.prometheusSelector, "the default selector, \(PrometheusQuery.defaultSelector), is not written out")
        XCTAssertNil(defaults.maxInvalidReadings)

        let open = dir + "/open-token"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: open))
        chmod(open, 0o644)
        let warned = try XCTUnwrap(parse(RolloutConfigTests.doc(#"""
            { "variant": "canary", "steps": [100], "gateSource": { "prometheus": "http://p:9090", "bearerTokenFile": "\#(open)" } }
            """#)))
        XCTAssertTrue(warned.warnings.contains { $0.contains("gateSource.bearerTokenFile") && $0.contains("chmod 600") }, "\(warned.warnings)")

        let broken = dir + "/broken-token"
        try Data("abc\r\nX-Injected: 1\n".utf8).write(to: URL(fileURLWithPath: broken))
        chmod(broken, 0o600)
        let table: [(String, String)] = [
            (#""selector": "job=\"a\"} or vector(1)""#, "routes[0].rollout.gateSource.selector: expected a comma"),
            (#""selector": "job=\"a""#, "routes[0].rollout.gateSource.selector: the value of job is not closed"),
            (#""maxInvalidReadings": 0"#, "routes[0].rollout.gateSource.maxInvalidReadings: must be between 1 and 1000"),
            (#""bearerTokenFile": "\#(dir)/missing""#, "routes[0].rollout.gateSource.bearerTokenFile: cannot read"),
            (#""bearerTokenFile": "\#(broken)""#, "routes[0].rollout.gateSource.bearerTokenFile: the token in"),
            (#""timeout": 3"#, "routes[0].rollout.gateSource.timeout: unknown key"),
        ]
        for (key, fragment) in table {
            assertError(RolloutConfigTests.doc(#"{ "variant": "canary", "steps": [100], "gateSource": { "prometheus": "http://p:9090", \#(key) } }"#),
                        fragment)
        }
    }

    func testLimitsThatOverflowDownstreamAreRefused() {
        assertError(Doc.make(extra: #""limits": { "maxConnections": 9223372036854775807 }"#), "limits.maxConnections: must be between 1 and 100000000, got 9223372036854775807")
        assertError(Doc.make(extra: #""timeouts": { "idleMs": 604800001 }"#), "timeouts.idleMs: must be between 1 and 604800000, got 604800001")
        XCTAssertNotNil(parse(Doc.make(extra: #""timeouts": { "idleMs": 604800000 }, "limits": { "maxConnections": 100000000 }"#)))
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "outside-numbers-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    // MARK: Control arguments

    func testMinRequestsOutOfRangeIsRefusedAtParse() throws {
        for bad in ["18446744073709551615", "9223372036854775808", "1000000001", "-1", "1e3"] {
            XCTAssertThrowsError(try GuardOptions.extract(["shop", "stable=90", "--bake", "5", "--revert-if-error-rate", "0.5",
                                                           "--min-requests", bad], command: "set weights"), bad) {
                XCTAssertTrue(($0 as? ControlError)?.message.contains("--min-requests must be a whole number from 1 to 1000000000") ?? false,
                              "\($0)")
            }
        }
        for bad in [["--revert-if-p99-ms", "inf"], ["--revert-if-p99-ratio", "inf"], ["--revert-if-p99-ms", "nan"]] {
            XCTAssertThrowsError(try GuardOptions.extract(["shop", "--bake", "5"] + bad, command: "set weights"), "\(bad)")
        }
        let top = try XCTUnwrap(GuardOptions.extract(["shop", "--bake", "5", "--revert-if-error-rate", "0.5", "--min-requests", "1000000000"],
                                                     command: "set weights").options)
        XCTAssertEqual(top.value["minRequests"]?.int, 1_000_000_000)
        // Built in code past the parser's bound, the reply clamps rather than trapping.
        XCTAssertEqual(GuardOptions(bakeSeconds: 1, minRequests: .max).value["minRequests"]?.int, Int.max)
    }

    // MARK: State file

    func testASavedRolloutOutOfBoundsIsDroppedNotRun() throws {
        let config = try XCTUnwrap(parse(RolloutConfigTests.doc(#"{ "variant": "canary", "steps": [10, 100] }"#))?.config)
        let good = RolloutStatus(plan: config.routes[0].rollout!, origin: "config", now: 0, reading: RolloutReading())
        var hostile: [(String, (inout RolloutStatus) -> Void)] = [
            ("step", { $0.step = .max }), ("step", { $0.step = 2 }), ("weight", { $0.weight = 101 }),
            ("stepSeconds", { $0.plan.stepSeconds = .max }),
            ("stepSeconds", { $0.plan.stepSeconds = -1 }), ("maxStepSeconds", { $0.plan.maxStepSeconds = .min }),
            ("steps", { $0.plan.steps = [] }), ("minRequests", { $0.plan.gates.minRequests = -1 }),
            ("maxP99Ratio", { $0.plan.gates.maxP99Ratio = -1 }),
            ("selector", { $0.plan.prometheusSelector = #"job="a"} or vector(1"# }),
            ("maxInvalidReadings", { $0.plan.maxInvalidReadings = 0 }), ("gateSource", { $0.plan.prometheus = "ftp://p" }),
        ]
        hostile.append(("window", { $0.plan.window = RolloutWindow(start: 5000, end: 0, timeZone: "UTC") }))
        // Finite but no time: /status would print the seconds to the next step from them.
        hostile.append(("stepStartedAt", { $0.stepStartedAt = 1e300 }))
        hostile.append(("startAt", { $0.plan.startAt = -1e300 }))
        // A webhook call would wait this long on the rollout's queue.
        hostile.append(("webhook", { $0.plan.gates.webhook = RolloutWebhook(url: "http://127.0.0.1:9/", timeoutMs: .max) }))
        for (field, edit) in hostile {
            var status = good
            edit(&status)
            var overrides = Overrides()
            overrides.rollouts["r"] = status
            // Through the file's own encoding, as a start would read it.
            let bytes = Array(try JSONEncoder().encode(["version": 1]).dropLast()) + Array(",\"overrides\":".utf8)
                + Array(try JSONEncoder().encode(overrides)) + [UInt8(ascii: "}")]
            guard case .success(let loaded) = StateFile.decode(bytes) else { return XCTFail("\(field): not decoded") }
            let applied = loaded.applied(to: config)
            XCTAssertNil(applied.kept.rollouts["r"], field)
            XCTAssertTrue(applied.dropped.contains { $0.hasPrefix("rollout r: ") && $0.contains(field) }, "\(field): \(applied.dropped)")
        }
        var overrides = Overrides()
        overrides.rollouts["r"] = good
        XCTAssertNotNil(overrides.applied(to: config).kept.rollouts["r"], "an ordinary one stays")
    }

    func testRolloutClockArithmeticSaturates() {
        var plan = RolloutPlan(variant: "canary", baseline: "stable", steps: [10, 100], stepSeconds: .max)
        XCTAssertEqual(plan.maxStepSeconds, .max)
        plan.startAt = -1e300
        var status = RolloutStatus(plan: plan, origin: "config", now: 0, reading: RolloutReading())
        status.step = 0
        XCTAssertEqual(status.clockStep(1e300), 2, "past the last step is the end")
        XCTAssertEqual(status.clockStep(-1e300), 0)
        plan.stepSeconds = 1
        status.plan = plan
        XCTAssertEqual(status.clockStep(1e300), 2, "past the last step is the end")
        XCTAssertNotNil(status.nextStepAt())
    }

    func testPauseForAReasonSaysWhy() {
        var status = RolloutStatus(plan: RolloutPlan(variant: "canary", baseline: "stable", steps: [10, 100], stepSeconds: 1),
                                   origin: "config", now: 0, reading: RolloutReading())
        _ = status.tick(now: 0, reading: RolloutReading())
        let effects = status.pause(now: 1, why: "3 invalid readings in a row from Prometheus")
        XCTAssertEqual(status.state, .paused)
        XCTAssertEqual(status.reason, "3 invalid readings in a row from Prometheus")
        XCTAssertTrue(effects.events.first?.detail.hasSuffix(": 3 invalid readings in a row from Prometheus") ?? false, "\(effects)")
    }
}
