// Experiments over time: a weight change starts a new epoch whose counts are checked against the
// new weights (a ramp does not raise the alarm), /metrics carries the counts and the check, keyed
// units are logged once per process without the key ever being written, and SIGUSR1 moves the
// exposure log to a new file after logrotate.
import Foundation
import TestSupport
import XCTest

final class ExperimentEpochTests: ABTestCase {

    private func config(weights: (Int, Int), sticky: String, exposureLog: String) throws -> String {
        let route = """
            { "name": "shop",
              "split": [ { "variant": "A", "upstream": "a", "weight": \(weights.0) },
                         { "variant": "B", "upstream": "b", "weight": \(weights.1) } ],
              "sticky": \(sticky),
              "experiment": { "name": "ramp", "exposureLog": "\(exposureLog)" } }
            """
        return routingConfig(upstreams: [("a", pool(a.endpoint)), ("b", pool(b.endpoint))], routes: [route],
                             controlSocket: try controlSocket(), admin: true)
    }

    /// `count` returning users with version-1 cookies whose buckets are drawn from `rng`.
    private func returning(_ proxy: RunningProxy, _ count: Int, _ rng: inout SeededRandom) throws -> [HTTPResponse] {
        let tag = String(format: "%08x", fnv1a32(Array("shop".utf8)))
        let buckets = (0..<count).map { _ in Int(rng.next() % 10_000) }
        return try sendMany(proxy, count: count) { i in get("/", ["Cookie: sy-shop=1.\(buckets[i]).\(tag)"]) }
    }

    func testARampStartsANewEpochAndRaisesNoAlarm() throws {
        let log = try temporaryDirectory() + "/exposures.jsonl"
        let proxy = try startProxy(json: try config(weights: (90, 10), sticky: #"{ "salt": "shop" }"#, exposureLog: log))
        let control = try ControlLineClient(path: try controlSocket())
        var rng = SeededRandom(seed: 7)
        _ = try returning(proxy, 3_000, &rng)
        let before = try control.command("show experiment shop")
        XCTAssertEqual((before["epoch"] as? [String: Any])?["number"] as? Int, 1)
        XCTAssertEqual((before["srm"] as? [String: Any])?["units"] as? Int, 3_000)
        XCTAssertEqual(try control.command("set weights shop A=50 B=50")["ok"] as? Bool, true)
        _ = try returning(proxy, 3_000, &rng)
        let after = try control.command("show experiment shop")
        let srm = try XCTUnwrap(after["srm"] as? [String: Any])
        XCTAssertEqual((after["epoch"] as? [String: Any])?["number"] as? Int, 2, "new weights, a new epoch")
        XCTAssertEqual(srm["units"] as? Int, 3_000, "the counts start again with the weights")
        XCTAssertEqual(srm["mismatch"] as? Bool, false, "\(srm)")
        XCTAssertGreaterThan(srm["pValue"] as? Double ?? 0, 0.001, "\(srm)")
        let shares = try XCTUnwrap(srm["variants"] as? [String: [String: Any]])
        XCTAssertEqual(shares["A"]?["expectedShare"] as? Double, 0.5)

        // The same in /metrics.
        let admin = try adminPort(proxy)
        let metrics = try RawClient(port: admin, timeout: 5).exchange("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").bodyText
        XCTAssertTrue(metrics.contains(#"switchyard_experiment_weight_epoch{experiment="ramp",route="shop"} 2"#), metrics)
        XCTAssertTrue(metrics.contains(#"switchyard_experiment_new_units_total{experiment="ramp",route="shop",variant="A"}"#))
        XCTAssertTrue(metrics.contains(#"switchyard_experiment_srm_mismatch{experiment="ramp",route="shop"} 0"#))
        XCTAssertTrue(metrics.contains(#"switchyard_experiment_expected_share{experiment="ramp",route="shop",variant="B"} 0.5"#))
        let newUnits = metrics.split(separator: "\n").filter { $0.hasPrefix("switchyard_experiment_new_units{") }
            .compactMap { Int($0.split(separator: " ").last ?? "") }
        XCTAssertEqual(newUnits.reduce(0, +), 3_000)
    }

    func testKeyedUnitsAreLoggedOncePerProcessAndNeverAsTheKey() throws {
        let dir = try temporaryDirectory()
        let log = dir + "/exposures.jsonl"
        let proxy = try startProxy(json: try config(weights: (50, 50), sticky: #"{ "salt": "shop", "key": { "header": "X-User-Id" } }"#,
                                                    exposureLog: log))
        let users = 300
        let responses = try sendMany(proxy, count: users * 3) { i in get("/", ["X-User-Id: user-\(i % users)@example.com"]) }
        XCTAssertTrue(responses.allSatisfy { $0.status == 200 && setCookieValue($0, named: "sy-shop") == nil },
                      "a keyed unit needs no cookie")
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(try waitUntil { ((try control.command("show experiment shop"))["exposureLog"] as? [String: Any])?["written"] as? Int == users })
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertFalse(text.contains("example.com"), "the key is personal data: only its keyed hash is written")
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, users, "one line per unit")
        XCTAssertTrue(lines.allSatisfy { $0.contains(#""keyed":true"#) })
        XCTAssertEqual(Set(lines.map { $0.split(separator: ",").first { $0.hasPrefix(#""unit":"#) } ?? "" }).count, users)

        // logrotate: the file is moved, SIGUSR1, and the next exposures go to a new file.
        try FileManager.default.moveItem(atPath: log, toPath: dir + "/exposures.jsonl.1")
        proxy.process.send(signal: SIGUSR1)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reopened the exposure log"))
        _ = try sendMany(proxy, count: 50) { i in get("/", ["X-User-Id: later-\(i)"]) }
        XCTAssertTrue(waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count == 50 },
                      "the reopened file has the new units' lines")
        XCTAssertEqual(try String(contentsOfFile: dir + "/exposures.jsonl.1", encoding: .utf8).split(separator: "\n").count, users)
    }
}
