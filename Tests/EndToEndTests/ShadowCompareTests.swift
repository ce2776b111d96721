// Shadow comparison through the real proxy: a shadow that differs from the primary on a known
// share of requests gives exactly the expected counts by result (status exact and by class,
// body hash), a silent shadow is counted as a timeout and a refusing one as an error, and
// `show shadow` and the access log name the mismatched requests.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ShadowCompareTests: EndToEndTestCase {
    /// An upstream that answers each GET by its path: `answer(path)` gives the status and body,
    /// nil for no answer at all (the connection is held open, silent).
    private func startAnswering(_ answer: @escaping @Sendable (String) -> (Int, String)?) throws -> String {
        let server = try startServer { connection, _ in
            while let head = connection.readHead() {
                let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                guard let (status, body) = answer(target) else {
                    connection.waitForPeerClose(timeout: 30)
                    return
                }
                connection.send("HTTP/1.1 \(status) X\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            }
        }
        return "127.0.0.1:\(server.port)"
    }

    /// The number at the end of a path (`/n/7` gives 7).
    private static func index(_ path: String) -> Int { Int(path.split(separator: "/").last ?? "") ?? -1 }

    private func proxy(primary: String, shadows: [(String, String)], mirrors: [String], responseMs: Int = 3000,
                       extra: String = "") throws -> RunningProxy {
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ \#(mirrors.joined(separator: ", ")) ] }"#
        var json = routingConfig(upstreams: [("app", pool(primary))] + shadows.map { ($0.0, pool($0.1)) }, routes: [route],
                                 responseMs: responseMs, controlSocket: try controlSocket(), admin: true)
        if !extra.isEmpty { json = "{\n  " + extra + ",\n" + json.dropFirst(2) }
        return try startProxy(json: json)
    }

    private func key(_ family: String, shadow: String, _ more: String = "") -> String {
        "\(family){route=\"main\",shadow=\"\(shadow)\"\(more)}"
    }

    private func comparisons(_ m: Metrics, _ shadow: String, _ result: String) -> Int {
        m[key("switchyard_shadow_comparisons_total", shadow: shadow, ",result=\"\(result)\"")]
    }

    private func compared(_ m: Metrics, _ shadow: String) -> Int {
        ["match", "status_mismatch", "body_mismatch", "shadow_error", "shadow_timeout"].reduce(0) { $0 + comparisons(m, shadow, $1) }
    }

    func testStatusMismatchesAreCountedExactlyAndByClass() throws {
        let primary = try startAnswering { path in (200, "same-\(Self.index(path))") }
        // Every 4th request a 500; the rest a 201 (the same class as the primary's 200).
        let shadow = try startAnswering { path in (Self.index(path) % 4 == 3 ? 500 : 201, "same-\(Self.index(path))") }
        let dir = try temporaryDirectory()
        let log = dir + "/access.log"
        let p = try proxy(primary: primary, shadows: [("exact", shadow), ("byclass", shadow)],
                          mirrors: [#"{ "upstream": "exact", "percent": 100, "compare": { "status": true, "latency": true } }"#,
                                    #"{ "upstream": "byclass", "percent": 100, "compare": { "status": "class" } }"#],
                          extra: #""accessLog": { "path": "\#(log)" }"#)
        let admin = try adminPort(p)
        let client = try connect(p)
        let n = 40
        for i in 0..<n {
            let r = try client.exchange(get("/n/\(i)"))
            XCTAssertEqual(r.status, 200, "the client always gets the primary's answer")
            XCTAssertEqual(r.bodyText, "same-\(i)")
        }
        let m = try waitForMetrics(adminPort: admin, timeout: 10) { compared($0, "exact") >= n && compared($0, "byclass") >= n }
        XCTAssertEqual(compared(m, "exact"), n, m.text)
        XCTAssertEqual(comparisons(m, "exact", "status_mismatch"), n, "201 and 500 both differ from 200 exactly")
        XCTAssertEqual(comparisons(m, "byclass", "match"), n - n / 4, m.text)
        XCTAssertEqual(comparisons(m, "byclass", "status_mismatch"), n / 4, m.text)
        XCTAssertEqual(m[key("switchyard_shadow_response_seconds_count", shadow: "exact")], n, "latency of every compared copy")
        XCTAssertEqual(m[key("switchyard_shadow_primary_response_seconds_count", shadow: "exact")], n)
        XCTAssertEqual(m[key("switchyard_shadow_response_seconds_count", shadow: "byclass")], n, "latency is on by default")
        // The exposition stays valid Prometheus text with the new families (histograms checked).
        let exposition = try Exposition(m.text)
        XCTAssertEqual(exposition.value("switchyard_shadow_comparisons_total",
                                        ["route": "main", "shadow": "byclass", "result": "status_mismatch"]), Double(n / 4))

        // show shadow: match rate, both latencies, and the last mismatches with their request ids.
        let shown = try ctl(["--json", "show", "shadow", "main"])
        let reply = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], shown.stderr)
        let rows = try XCTUnwrap(reply["shadows"] as? [[String: Any]])
        let byclass = try XCTUnwrap(rows.first { $0["shadow"] as? String == "byclass" })
        XCTAssertEqual(byclass["compared"] as? Int, n)
        XCTAssertEqual(byclass["matchRate"] as? Double, 0.75)
        XCTAssertNotNil(byclass["shadowP99Ms"] as? Double)
        XCTAssertNotNil(byclass["primaryP50Ms"] as? Double)
        let mismatches = try XCTUnwrap(reply["mismatches"] as? [[String: Any]])
        let fiveHundreds = mismatches.filter { $0["shadow"] as? String == "byclass" }
        XCTAssertFalse(fiveHundreds.isEmpty)
        for e in fiveHundreds {
            XCTAssertEqual(e["method"] as? String, "GET")
            XCTAssertEqual(e["status"] as? Int, 200)
            XCTAssertEqual(e["shadowStatus"] as? Int, 500)
            XCTAssertEqual(Self.index(e["path"] as? String ?? "") % 4, 3, "\(e)")
            XCTAssertEqual((e["requestId"] as? String)?.count, 16)
        }

        // The access log has a line per mismatch (sampled at 1 here) beside the exchanges.
        var shadowLines: [[String: Any]] = []
        try waitUntil(timeout: 10, interval: 0.02) {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            shadowLines = try text.split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.filter { $0["shadow"] != nil }
            return shadowLines.count >= n + n / 4
        }
        XCTAssertEqual(shadowLines.count, n + n / 4)
        let line = try XCTUnwrap(shadowLines.first { $0["shadow"] as? String == "main/byclass" })
        XCTAssertEqual(line["result"] as? String, "status_mismatch")
        XCTAssertEqual(line["shadowStatus"] as? Int, 500)
    }

    func testBodyMismatchesAreCountedWhenBodyHashIsOn() throws {
        let primary = try startAnswering { path in (200, "body-\(Self.index(path))") }
        // Every 5th body differs; the status never does.
        let shadow = try startAnswering { path in
            let i = Self.index(path)
            return (200, i % 5 == 0 ? "BODY-\(i)" : "body-\(i)")
        }
        let p = try proxy(primary: primary, shadows: [("hashed", shadow), ("plain", shadow)],
                          mirrors: [#"{ "upstream": "hashed", "percent": 100, "compare": { "bodyHash": true } }"#,
                                    #"{ "upstream": "plain", "percent": 100, "compare": { "status": true } }"#])
        let admin = try adminPort(p)
        let client = try connect(p)
        let n = 40
        for i in 0..<n { XCTAssertEqual(try client.exchange(get("/b/\(i)")).bodyText, "body-\(i)") }
        let m = try waitForMetrics(adminPort: admin, timeout: 10) { compared($0, "hashed") >= n && compared($0, "plain") >= n }
        XCTAssertEqual(comparisons(m, "hashed", "body_mismatch"), n / 5, m.text)
        XCTAssertEqual(comparisons(m, "hashed", "match"), n - n / 5, m.text)
        XCTAssertEqual(comparisons(m, "plain", "match"), n, "without bodyHash, bodies are not compared")
    }

    func testSilentShadowCountsTimeoutsAndRefusingShadowCountsAnError() throws {
        let primary = try startAnswering { _ in (200, "ok") }
        let silent = try startAnswering { _ in nil }
        let refusing = try refusingEndpoint()
        let p = try proxy(primary: primary, shadows: [("silent", silent), ("gone", refusing)],
                          mirrors: [#"{ "upstream": "silent", "percent": 100, "compare": {} }"#,
                                    #"{ "upstream": "gone", "percent": 100, "compare": {} }"#],
                          responseMs: 1000)
        let admin = try adminPort(p)
        let client = try connect(p)
        let started = DispatchTime.now().uptimeNanoseconds
        for i in 0..<3 { XCTAssertEqual(try client.exchange(get("/t/\(i)")).status, 200) }
        let elapsedMs = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        let m = try waitForMetrics(adminPort: admin, timeout: 10) {
            comparisons($0, "silent", "shadow_timeout") >= 3 && comparisons($0, "gone", "shadow_error") >= 1
        }
        XCTAssertEqual(comparisons(m, "silent", "shadow_timeout"), 3, m.text)
        XCTAssertEqual(comparisons(m, "silent", "match"), 0)
        XCTAssertGreaterThanOrEqual(comparisons(m, "gone", "shadow_error"), 1, m.text)
        XCTAssertEqual(comparisons(m, "gone", "match"), 0)
        // The primary did not wait for the silent shadow (1000 ms each otherwise).
        XCTAssertLessThan(elapsedMs, 3 * 1000, "three primaries answered in \(elapsedMs) ms")
    }

    func testRoutesWithoutCompareExposeNoComparisons() throws {
        let primary = try startAnswering { _ in (200, "ok") }
        let shadow = try startAnswering { _ in (500, "no") }
        let p = try proxy(primary: primary, shadows: [("shadow", shadow)], mirrors: [#"{ "upstream": "shadow", "percent": 100 }"#])
        let admin = try adminPort(p)
        let client = try connect(p)
        for i in 0..<5 { XCTAssertEqual(try client.exchange(get("/x/\(i)")).status, 200) }
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= 5 }
        XCTAssertEqual(m.mirrorCompleted, 5)
        XCTAssertFalse(m.text.contains("switchyard_shadow_comparisons_total"), "no comparison without compare")
    }
}
