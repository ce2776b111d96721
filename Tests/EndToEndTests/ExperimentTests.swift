// A/B experiments through a real proxy: 20,000 returning users (version-1 cookies, upgraded to
// units without moving their bucket) through a 50/50 split, B converting at 12% and A at 10% on a
// goal served by another route. Every unit's exposure is logged once, the split is healthy, and
// B wins. A rule that pins a cookie to A breaks the split: the sample-ratio check alarms and a
// rollout gated on it pauses.
import Foundation
import TestSupport
import XCTest

/// Two echo upstreams, "A" and "B", for the experiments' variants.
class ABTestCase: EndToEndTestCase {
    var a: EchoUpstream!
    var b: EchoUpstream!

    override func setUpWithError() throws {
        try super.setUpWithError()
        a = try startEcho(name: "A")
        b = try startEcho(name: "B")
    }
}

final class ExperimentTests: ABTestCase {

    private func shopConfig(exposureLog: String, rules: String = "[]", rollout: String? = nil) throws -> String {
        let routes = [
            """
            { "name": "checkout", "match": { "pathPrefix": "/checkout" }, "upstream": "a" }
            """,
            """
            { "name": "shop",
              "split": [ { "variant": "A", "upstream": "a", "weight": \(rollout == nil ? 50 : 100) },
                         { "variant": "B", "upstream": "b", "weight": \(rollout == nil ? 50 : 0) } ],
              "rules": \(rules),
              "sticky": { "cookie": "sy-shop", "salt": "shop" },
              "experiment": { "name": "checkout-v2", "exposureLog": "\(exposureLog)",
                              "goals": [ { "name": "checkout", "match": { "method": "POST", "pathPrefix": "/checkout" },
                                           "status": "2xx" } ] }\(rollout.map { ", \"rollout\": \($0)" } ?? "") }
            """,
        ]
        return routingConfig(upstreams: [("a", pool(a.endpoint)), ("b", pool(b.endpoint))], routes: routes,
                             controlSocket: try controlSocket(), admin: true)
    }

    func testTwentyThousandUsersExposuresOnceSplitHealthyAndBWins() throws {
        let log = try temporaryDirectory() + "/exposures.jsonl"
        let proxy = try startProxy(json: try shopConfig(exposureLog: log))
        let users = 20_000
        var rng = SeededRandom(seed: 21)
        let tag = String(format: "%08x", fnv1a32(Array("shop".utf8)))
        // Returning users from before the experiment: version-1 cookies, buckets drawn uniformly.
        let buckets = (0..<users).map { _ in Int(rng.next() % 10_000) }
        let first = try sendMany(proxy, count: users) { i in get("/", ["Cookie: sy-shop=1.\(buckets[i]).\(tag)"]) }

        var cookies: [String] = []
        var variants: [String] = []
        for (i, r) in first.enumerated() {
            XCTAssertEqual(r.status, 200)
            let value = setCookieValue(r, named: "sy-shop") ?? ""
            let parts = value.split(separator: ".").map(String.init)
            XCTAssertEqual(parts.count, 4, "a version-2 cookie: \(value)")
            XCTAssertEqual(parts.first, "2")
            XCTAssertEqual(parts.count > 1 ? Int(parts[1]) : nil, buckets[i], "the upgrade keeps the bucket")
            XCTAssertEqual(parts.count > 3 ? parts[3].count : 0, 16, "a 16-hex-digit unit")
            cookies.append(value)
            variants.append(r.header("X-Echo-Name") ?? "")
            if i >= 20 && cookies.count != i + 1 { break }
        }
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(try waitUntil(timeout: 20) {
            let r = try control.command("show experiment shop")
            return ((r["exposureLog"] as? [String: Any])?["written"] as? Int) == users
        }, "every unit's exposure written")

        // Conversions on the goal's own route: B at 12%, A at 10%.
        var converting: [Int] = []
        for i in 0..<users where Double(rng.next() % 1_000_000) / 1_000_000 < (variants[i] == "B" ? 0.12 : 0.10) {
            converting.append(i)
        }
        let converters = converting.map { cookies[$0] }
        let posts = try sendMany(proxy, count: converters.count) { k in
            "POST /checkout HTTP/1.1\r\nHost: example.test\r\nCookie: sy-shop=\(converters[k])\r\nContent-Length: 0\r\n\r\n"
        }
        XCTAssertTrue(posts.allSatisfy { $0.status == 200 })
        // Returning again with their units: no new cookie, no new exposure.
        let returning = Array(cookies.prefix(2_000))
        let again = try sendMany(proxy, count: returning.count) { i in get("/", ["Cookie: sy-shop=\(returning[i])"]) }
        for (i, r) in again.enumerated() {
            XCTAssertNil(setCookieValue(r, named: "sy-shop"), "a unit's cookie is not set again")
            XCTAssertEqual(r.header("X-Echo-Name"), variants[i])
        }

        let report = try control.command("show experiment shop")
        let srm = try XCTUnwrap(report["srm"] as? [String: Any])
        XCTAssertEqual(srm["units"] as? Int, users, "new units counted exactly, once each")
        XCTAssertGreaterThan(try XCTUnwrap(srm["pValue"] as? Double), 0.01, "\(srm)")
        XCTAssertEqual(srm["mismatch"] as? Bool, false)
        XCTAssertEqual(report["winner"] as? String, "B", "\(report["verdict"] ?? "")")
        let goal = try XCTUnwrap((report["goals"] as? [String: [String: Any]])?["checkout"])
        XCTAssertEqual(goal["winner"] as? String, "B")
        let arms = try XCTUnwrap(goal["variants"] as? [[String: Any]])
        for arm in arms {
            let name = arm["variant"] as? String ?? ""
            let exposed = variants.filter { $0 == name }.count
            let converted = converting.filter { variants[$0] == name }.count
            XCTAssertEqual(Double(arm["units"] as? Int ?? 0), Double(exposed), accuracy: Double(exposed) * 0.03, "\(arm)")
            XCTAssertEqual(Double(arm["converted"] as? Int ?? 0), Double(converted), accuracy: Double(converted) * 0.03, "\(arm)")
        }
        XCTAssertTrue((report["verdict"] as? String ?? "").hasPrefix("B converts better than A"), "\(report["verdict"] ?? "")")

        // The exposure log: one line per unit, with the variant it was served.
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, users)
        var byUnit: [String: String] = [:]
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(object["experiment"] as? String, "checkout-v2")
            XCTAssertNotNil(object["time"] as? String)
            XCTAssertNotNil(object["instance"] as? String)
            byUnit[object["unit"] as? String ?? ""] = object["variant"] as? String
        }
        XCTAssertEqual(byUnit.count, users, "one line per unit")
        for (cookie, variant) in zip(cookies, variants).prefix(500) {
            XCTAssertEqual(byUnit[String(cookie.split(separator: ".")[3])], variant)
        }
        _ = proxy
    }

    func testTheUpstreamLearnsTheUnitAndAClientCannotForgeIt() throws {
        let proxy = try startProxy(json: try shopConfig(exposureLog: try temporaryDirectory() + "/exposures.jsonl"))
        let c = try connect(proxy)
        let first = try c.exchange(get("/", ["X-Switchyard-Unit: 0123456789abcdef"]))
        let cookie = try XCTUnwrap(setCookieValue(first, named: "sy-shop"))
        let unit = String(cookie.split(separator: ".")[3])
        func units(_ r: HTTPResponse) throws -> [String] {
            let object = try JSONSerialization.jsonObject(with: Data(r.bodyText.utf8)) as? [String: Any]
            let headers = object?["headers"] as? [[String]] ?? []
            return headers.filter { $0.first?.lowercased() == "x-switchyard-unit" }.map { $0.count > 1 ? $0[1] : "" }
        }
        XCTAssertEqual(try units(first), [unit], "the proxy's unit, the client's dropped")
        let again = try c.exchange(get("/", ["Cookie: sy-shop=\(cookie)"]))
        XCTAssertEqual(try units(again), [unit])
        // Not on a route without the experiment.
        XCTAssertEqual(try units(try c.exchange(get("/checkout", ["Cookie: sy-shop=\(cookie)", "X-Switchyard-Unit: 1"]))), [])
    }

    func testAPinningRuleRaisesTheSampleRatioAlarmAndPausesTheGatedRollout() throws {
        let log = try temporaryDirectory() + "/exposures.jsonl"
        let rollout = #"{ "variant": "B", "steps": [50, 100], "stepSeconds": 3600, "gates": { "maxSRM": 0.001 } }"#
        let proxy = try startProxy(json: try shopConfig(exposureLog: log, rules: #"[ { "cookie": { "beta": "1" }, "variant": "A" } ]"#,
                                                        rollout: rollout))
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(try waitUntil { ((try control.command("show rollout shop"))["weight"] as? Int) == 50 }, "the first step")
        // New users, two in five of them with the beta cookie: A gets 70% instead of 50%.
        let responses = try sendMany(proxy, count: 1_000) { i in get("/", i % 5 < 2 ? ["Cookie: beta=1"] : []) }
        XCTAssertTrue(responses.allSatisfy { setCookieValue($0, named: "sy-shop") != nil }, "pinned users get a unit too")
        let paused = try waitUntil(timeout: 10) { ((try control.command("show rollout shop"))["state"] as? String) == "paused" }
        let state = try control.command("show rollout shop")
        XCTAssertTrue(paused, "the maxSRM gate pauses the rollout: \(state)")
        let report = try control.command("show experiment shop")
        let srm = try XCTUnwrap(report["srm"] as? [String: Any])
        XCTAssertLessThan(try XCTUnwrap(srm["pValue"] as? Double), 1e-6)
        XCTAssertEqual(srm["mismatch"] as? Bool, true)
        XCTAssertTrue((report["verdict"] as? String ?? "").contains("Sample-ratio mismatch"), "\(report)")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "sample-ratio mismatch"), "one warning in the log")
        let rolloutState = try control.command("show rollout shop")
        XCTAssertTrue("\(rolloutState)".contains("maxSRM"), "\(rolloutState)")
    }

    func testAGuardedWeightChangeIsRevertedWhenItsSplitBreaks() throws {
        let proxy = try startProxy(json: try shopConfig(exposureLog: try temporaryDirectory() + "/exposures.jsonl",
                                                        rules: #"[ { "cookie": { "beta": "1" }, "variant": "A" } ]"#))
        let control = try ControlLineClient(path: try controlSocket())
        let reply = try control.command("set weights shop A=20 B=80 --bake 60 --revert-if-srm 0.001")
        let guardValue = try XCTUnwrap(reply["guard"] as? [String: Any], "\(reply)")
        XCTAssertEqual((guardValue["limits"] as? [String: Any])?["maxSRM"] as? Double, 0.001, "\(guardValue)")
        // Two in five new users carry the beta cookie: A gets 52% where the weights say 20%.
        _ = try sendMany(proxy, count: 1_000) { i in get("/", i % 5 < 2 ? ["Cookie: beta=1"] : []) }
        var record: [String: Any]?
        XCTAssertTrue(try waitUntil(timeout: 10) {
            record = (try control.command("show guards")["guards"] as? [[String: Any]])?.first
            return record?["state"] as? String == "reverted"
        }, "\(record ?? [:])")
        XCTAssertTrue((record?["reason"] as? String ?? "").contains("sample ratio of shop's experiment"), "\(record ?? [:])")
        let weights = (try control.command("show experiment shop")["epoch"] as? [String: Any])?["weights"] as? [String: Any]
        XCTAssertEqual(weights?["A"] as? Int, 50, "the weights the change replaced")
    }
}

/// xorshift64*: the same simulated users on every run.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

func fnv1a32(_ bytes: [UInt8]) -> UInt32 {
    var h: UInt32 = 0x811c_9dc5
    for byte in bytes { h = (h ^ UInt32(byte)) &* 0x0100_0193 }
    return h
}
