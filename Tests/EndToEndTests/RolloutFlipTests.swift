// A blue/green release declared as a rollout: it flips to the idle color when the config loads,
// bakes on its gates, and flips back by itself when the new color fails; a healthy one is
// promoted when its bake ends. With a shadow stage the idle color first gets compared copies and
// the flip waits for them; a bake survives kill -9 and still flips back.
import Foundation
import TestSupport
import XCTest

final class RolloutFlipTests: EndToEndTestCase {
    private func config(green: UInt16, blue: EchoUpstream, bakeSeconds: Int, shadow: String? = nil) throws -> String {
        let stage = shadow.map { "\"shadow\": \($0), " } ?? ""
        return try checkoutConfig(blue: blue.endpoint, green: "127.0.0.1:\(green)", routes: """
            [ { "name": "web", "upstream": "checkout",
                "rollout": { \(stage)"flip": { "bakeSeconds": \(bakeSeconds) }, "gates": { "maxErrorRate": 0.2, "minRequests": 5 } } } ]
            """)
    }

    private func drive(_ proxy: RunningProxy, until done: () throws -> Bool) throws {
        let client = try connect(proxy)
        XCTAssertTrue(try waitUntil(timeout: 30) {
            for _ in 0..<10 { _ = try? client.exchange(get("/")) }
            return try done()
        })
    }

    private func rollout(_ control: ControlLineClient) throws -> [String: Any] { try control.command("show rollout web") }

    private func events(_ rollout: [String: Any]) -> [String] {
        (rollout["history"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
    }

    func testAFailingNewColorIsFlippedBackByTheRelease() throws {
        let blue = try startEcho(name: "blue")
        let green = try startServer { conn, _ in
            while conn.readHead() != nil { _ = conn.send("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n") }
        }
        let proxy = try startProxy(json: try config(green: green.port, blue: blue, bakeSeconds: 60))
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(try waitUntil { try live(control) == "green" }, "the release flips when it starts")
        XCTAssertEqual(try rollout(control)["state"] as? String, "baking")
        try drive(proxy) { (try rollout(control))["state"] as? String == "rolled_back" }
        let guards = try control.command("show guards")
        XCTAssertEqual(try live(control), "blue", "flipped back: \(guards)")
        let r = try rollout(control)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("error rate"), "\(r)")
    }

    func testAHealthyNewColorIsPromotedWhenItsBakeEnds() throws {
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let proxy = try startProxy(json: try config(green: green.port, blue: blue, bakeSeconds: 1))
        let control = try ControlLineClient(path: try controlSocket())
        try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        XCTAssertEqual(try live(control), "green")
        XCTAssertEqual(try connect(proxy).exchange(get("/")).header("X-Echo-Name"), "green")
    }

    func testAShadowStageComparesTheIdleColorThenFlipsAndBakes() throws {
        let blue = try startEcho(name: "blue")
        let (green, heads) = try startRecording(name: "green")
        let json = try config(green: green.port, blue: blue, bakeSeconds: 1, shadow: #"{ "minCompared": 100, "minMatchRate": 0.995 }"#)
        var proxy = try startProxy(json: json)
        var control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing")
        XCTAssertEqual(try live(control), "blue", "no flip before the shadow passes")
        var during = try answers(proxy, header: "X-Echo-Name") { heads.value.count >= 20 }
        XCTAssertEqual(try live(control), "blue", "still shadowing after 20 copies of 100")
        // kill -9 in the stage: the restarted proxy still copies to the idle color, not the live one.
        proxy.process.kill()
        proxy = try startProxy(json: json)
        control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing", "still in its shadow stage")
        let copied = heads.value.count
        during += try answers(proxy, header: "X-Echo-Name") { heads.value.count >= copied + 20 }
        XCTAssertEqual(Set(during), ["blue"], "users stay on the live color while it shadows")
        XCTAssertTrue(heads.value.allSatisfy { $0.contains("X-Switchyard-Shadow: 1") }, "only copies reach the idle color")
        _ = try answers(proxy, header: "X-Echo-Name") { (try rollout(control))["state"] as? String == "promoted" }
        XCTAssertEqual(try live(control), "green")
        let r = try rollout(control)
        XCTAssertEqual(Array(events(r).prefix(5)), ["start", "shadow", "shadow_passed", "flip", "promote"], "\(r)")
        let mirrors = try control.command("show routes")["mirrors"] as? [[String: Any]] ?? []
        XCTAssertTrue(mirrors.isEmpty, "the copies stopped before the flip: \(mirrors)")
        XCTAssertEqual(try connect(proxy).exchange(get("/")).header("X-Echo-Name"), "green")
    }

    func testAShadowThatAnswersDifferentlyEndsTheReleaseUnflipped() throws {
        let blue = try startEcho(name: "blue")
        let (green, heads) = try startRecording(name: "green", failEvery: 50)
        let proxy = try startProxy(json: try config(green: green.port, blue: blue, bakeSeconds: 1,
                                                    shadow: #"{ "minCompared": 300, "minMatchRate": 0.995 }"#))
        let control = try ControlLineClient(path: try controlSocket())
        let seen = try answers(proxy, header: "X-Echo-Name") { (try rollout(control))["state"] as? String == "rolled_back" }
        XCTAssertEqual(try live(control), "blue", "never flipped")
        XCTAssertEqual(seen.filter { $0 != "blue" }.count, 0, "every user answered by the live color")
        XCTAssertGreaterThanOrEqual(heads.value.count, 300)
        XCTAssertTrue(heads.value.allSatisfy { $0.contains("X-Switchyard-Shadow: 1") }, "only copies reached green")
        let r = try rollout(control)
        let reason = r["reason"] as? String ?? ""
        XCTAssertTrue(reason.hasPrefix("shadow: match rate"), reason)
        XCTAssertTrue(reason.contains("not flipped"), reason)
        XCTAssertFalse(events(r).contains("flip"), "\(r)")
    }

    func testABakeSurvivesKillAndRestartAndStillFlipsBack() throws {
        let blue = try startEcho(name: "blue")
        let green = try startServer { conn, _ in
            while conn.readHead() != nil { _ = conn.send("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n") }
        }
        let json = try config(green: green.port, blue: blue, bakeSeconds: 120)
        var proxy = try startProxy(json: json)
        var control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(try waitUntil { try live(control) == "green" }, "the release flips when it starts")
        let before = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
        XCTAssertEqual(before.first?["state"] as? String, "baking", "\(before)")
        let id = before.first?["id"] as? Int
        let deadline = before.first?["deadline"] as? String
        // No traffic yet, so no breach: kill -9 cuts the bake off.
        proxy.process.kill()
        proxy = try startProxy(json: json)
        control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try live(control), "green", "the flip is in the state file")
        XCTAssertEqual(try rollout(control)["state"] as? String, "baking", "the release still bakes")
        let after = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
        XCTAssertEqual(after.first?["id"] as? Int, id, "the same guard: \(after)")
        XCTAssertEqual(after.first?["state"] as? String, "baking")
        XCTAssertEqual(after.first?["deadline"] as? String, deadline, "its deadline kept")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "baking on after a restart"))
        try drive(proxy) { (try rollout(control))["state"] as? String == "rolled_back" }
        XCTAssertEqual(try live(control), "blue", "flipped back by the guard that survived the restart")
        let reason = try rollout(control)["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("error rate"), reason)
    }

    func testAnIdleColorMirrorCopiesToTheNextVersion() throws {
        let blue = try startEcho(name: "blue")
        let (green, heads) = try startRecording(name: "green")
        let json = """
        { "listeners": [ { "address": "127.0.0.1:0" } ],
          "upstreams": { "checkout": { "blue": { "endpoints": ["\(blue.endpoint)"] },
                                       "green": { "endpoints": ["127.0.0.1:\(green.port)"] }, "live": "blue" } },
          "routes": [ { "name": "web", "upstream": "checkout",
                        "mirror": [ { "upstream": "checkout", "percent": 100, "color": "idle" } ] } ] }
        """
        let proxy = try startProxy(json: json)
        let seen = try answers(proxy, header: "X-Echo-Name") { heads.value.count >= 10 }
        XCTAssertEqual(Set(seen), ["blue"], "users on the live color")
        XCTAssertTrue(heads.value.allSatisfy { $0.contains("X-Switchyard-Shadow: 1") }, "copies on the idle one")
    }

    func testAFlipReleaseNeedsABlueGreenUpstreamAndAGate() throws {
        let dir = try temporaryDirectory()
        let text = """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } },
          "routes": [ { "name": "web", "upstream": "app", "rollout": { "flip": {}, "steps": [100] } } ],
          "control": { "socket": "\(dir)/c.sock" } }
        """
        let result = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("bad.json", text)])
        XCTAssertTrue(result.stderr.contains(#"routes[0].rollout.steps: not with "flip""#), result.stderr)
        XCTAssertTrue(result.stderr.contains(#"routes[0].rollout: a flip bakes on "gates""#), result.stderr)
        let plain = """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } },
          "routes": [ { "name": "web", "upstream": "app", "rollout": { "flip": { "bakeSeconds": 5 }, "gates": { "maxErrorRate": 0.1 } } } ] }
        """
        let second = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("plain.json", plain)])
        XCTAssertTrue(second.stderr.contains(#"routes[0].rollout.flip: upstream "app" has no colors"#), second.stderr)
        let mirrors = """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } },
          "routes": [ { "name": "web", "upstream": "app",
                        "mirror": [ { "upstream": "app", "percent": 5, "color": "idle" } ] } ] }
        """
        let third = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("mirrors.json", mirrors)])
        XCTAssertTrue(third.stderr.contains(#"routes[0].mirror[0].color: upstream "app" has no colors"#), third.stderr)
        let word = mirrors.replacingOccurrences(of: #""idle""#, with: #""purple""#)
        let fourth = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("word.json", word)])
        XCTAssertTrue(fourth.stderr.contains(#"routes[0].mirror[0].color: must be "live" or "idle", got "purple""#), fourth.stderr)
    }
}
