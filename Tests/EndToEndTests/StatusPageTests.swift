// The admin status page (/status, /status.json) of a proxy with a rollout in progress and a
// shadow that disagrees with the primary: the route, variants, weights, the rollout's step and
// gate readings are shown, text from traffic is escaped, and the page reads in a real browser
// with JavaScript off (Debian's chromium, headless).
import Foundation
import TestSupport
import XCTest

final class StatusPageTests: EndToEndTestCase {
    /// The path of a request the shadow answers differently: it lands in the latest mismatches.
    static let hostilePath = "/x<script>alert(1)</script>"

    private func answering(_ name: String, status: Int) throws -> UInt16 {
        try startServer { conn, _ in
            while conn.readHead() != nil {
                _ = conn.send("HTTP/1.1 \(status) X\r\nContent-Length: \(name.utf8.count)\r\nX-Name: \(name)\r\n\r\n\(name)")
            }
        }.port
    }

    /// A proxy whose route `shop` rolls `canary` out in one-second steps that wait up to an hour
    /// for 10 canary requests (so without traffic it stays at the step it reached), and mirrors
    /// every request to a shadow answering 500.
    private func startRollout() throws -> (proxy: RunningProxy, admin: UInt16) {
        let dir = try temporaryDirectory()
        let json = """
            {
              "listeners": [ { "address": "127.0.0.1:0" } ],
              "workers": 2,
              "upstreams": { "stable": { "endpoints": ["127.0.0.1:\(try answering("stable", status: 200))"] },
                             "canary": { "endpoints": ["127.0.0.1:\(try answering("canary", status: 200))"] },
                             "shadow": { "endpoints": ["127.0.0.1:\(try answering("shadow", status: 500))"] } },
              "routes": [
                { "name": "shop", "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                                             { "variant": "canary", "upstream": "canary", "weight": 0 } ],
                  "rollout": { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 1, "maxStepSeconds": 3600,
                               "gates": { "maxErrorRate": 0.5, "minRequests": 10 } },
                  "mirror": [ { "upstream": "shadow", "percent": 100, "compare": { "status": true } } ] }
              ],
              "admin": { "address": "127.0.0.1:0" },
              "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
            }
            """
        let proxy = try startProxy(json: json)
        return (proxy, try adminPort(proxy))
    }

    private func admin(_ port: UInt16, _ path: String) throws -> HTTPResponse {
        let r = try RawClient(port: port, timeout: 5).exchange("GET \(path) HTTP/1.1\r\nHost: admin\r\n\r\n")
        XCTAssertEqual(r.status, 200, "\(path): \(r.bodyText)")
        return r
    }

    private func statusJSON(_ port: UInt16) throws -> [String: Any] {
        let r = try admin(port, "/status.json")
        XCTAssertEqual(r.header("Content-Type"), "application/json")
        guard let object = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
            throw TestError("/status.json is not an object: \(r.bodyText)")
        }
        return object
    }

    /// Sends requests one at a time until the rollout's first step is judged (it is at its second,
    /// with gate readings, and waits there: a request or two of the 10 it needs), then one the
    /// shadow mismatches; the status JSON once that request is among the latest mismatches.
    private func rolloutUnderWay(_ proxy: RunningProxy, admin port: UInt16) throws -> [String: Any] {
        var client = try connect(proxy)
        var status: [String: Any] = [:]
        func rollout() -> [String: Any]? { ((status["routes"] as? [[String: Any]])?.first)?["rollout"] as? [String: Any] }
        let stepped = try waitUntil(timeout: 60, interval: 0.001) {
            let r = try client.exchange(get("/"))
            if r.header("Connection")?.lowercased() == "close" { client = try connect(proxy) }
            status = try statusJSON(port)
            return rollout()?["step"] as? Int == 2
        }
        XCTAssertTrue(stepped, "the rollout did not reach its second step: \(status)")
        _ = try client.exchange(get(Self.hostilePath))
        let mismatched = try waitUntil(timeout: 10, interval: 0.01) {
            status = try statusJSON(port)
            return (status["mismatches"] as? [[String: Any]] ?? []).contains { $0["path"] as? String == Self.hostilePath }
        }
        XCTAssertTrue(mismatched, "the request is not among the latest mismatches: \(status)")
        return status
    }

    func testJSONShowsVariantsWeightsRolloutStepAndGateReadings() throws {
        let (proxy, port) = try startRollout()
        let status = try rolloutUnderWay(proxy, admin: port)
        let route = try XCTUnwrap((status["routes"] as? [[String: Any]])?.first)
        XCTAssertEqual(route["route"] as? String, "shop")
        let variants = route["variants"] as? [[String: Any]] ?? []
        XCTAssertEqual(variants.map { $0["variant"] as? String }, ["stable", "canary"])
        XCTAssertEqual(variants.map { $0["weight"] as? Int }, [50, 50], "the second step's weights")
        XCTAssertGreaterThan(variants[0]["requests"] as? Int ?? 0, 0, "requests over the last minute: \(variants)")
        XCTAssertNotNil(variants[0]["ratePerSecond"] as? Double, "\(variants)")
        let rollout = try XCTUnwrap(route["rollout"] as? [String: Any])
        XCTAssertEqual(rollout["step"] as? Int, 2)
        XCTAssertEqual(rollout["weight"] as? Int, 50)
        XCTAssertTrue((rollout["gateReadings"] as? [String] ?? []).contains { $0.hasPrefix("maxErrorRate ") }, "\(rollout)")
        let shadows = route["shadows"] as? [[String: Any]] ?? []
        XCTAssertEqual(shadows.first?["matchRate"] as? Double, 0, "the shadow answers 500 to everything: \(shadows)")
        let events = status["events"] as? [[String: Any]] ?? []
        XCTAssertTrue(events.contains { $0["kind"] as? String == "rollout start" }, "\(events)")
        let endpoints = (status["upstreams"] as? [[String: Any]] ?? []).flatMap { $0["endpoints"] as? [[String: Any]] ?? [] }
        XCTAssertEqual(endpoints.count, 3)
        XCTAssertTrue(endpoints.allSatisfy { $0["health"] as? String == "healthy" }, "\(endpoints)")
    }

    func testHTMLShowsTheRolloutAndEscapesTextFromTraffic() throws {
        let (proxy, port) = try startRollout()
        _ = try rolloutUnderWay(proxy, admin: port)
        let page = try admin(port, "/status")
        XCTAssertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        let html = page.bodyText
        for text in ["<h3>shop</h3>", ">stable<", ">canary<", "50 (50 %)", "step 2 of 3", "maxErrorRate "] {
            XCTAssertTrue(html.contains(text), "\(text) not in the page:\n\(html)")
        }
        XCTAssertTrue(html.contains("/x&lt;script&gt;alert(1)&lt;/script&gt;"), "the mismatched path, escaped:\n\(html)")
        XCTAssertFalse(html.contains("<script>alert"), "the path from traffic is markup:\n\(html)")
    }

    func testChromiumWithJavaScriptOffRendersThePageWithTheHostilePathAsText() throws {
        let (proxy, port) = try startRollout()
        _ = try rolloutUnderWay(proxy, admin: port)
        // JavaScript off by the profile's content setting: `--blink-settings=scriptEnabled=false`
        // also stops --dump-dom, which reads the page through the DevTools protocol.
        let profile = try temporaryDirectory() + "/chromium"
        try FileManager.default.createDirectory(atPath: profile + "/Default", withIntermediateDirectories: true)
        try Data(#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#.utf8)
            .write(to: URL(fileURLWithPath: profile + "/Default/Preferences"))
        let r = try ChildProcess.run(executable: "/usr/bin/chromium", arguments: [
            "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--dump-dom",
            "http://127.0.0.1:\(port)/status",
        ], timeout: 60)
        XCTAssertEqual(r.termination, .exited(0), r.stderr)
        let dom = r.stdout
        for text in ["<h3>shop</h3>", ">canary<", "step 2 of 3", "weight 50 %", "maxErrorRate "] {
            XCTAssertTrue(dom.contains(text), "\(text) not in the rendered page:\n\(dom)")
        }
        // The browser parsed the path as text: it serializes it escaped, and no element of it.
        XCTAssertTrue(dom.contains("/x&lt;script&gt;alert(1)&lt;/script&gt;"), dom)
        XCTAssertFalse(dom.contains("<script>alert"), dom)
    }
}
