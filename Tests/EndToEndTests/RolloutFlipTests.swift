// A blue/green release declared as a rollout: it flips to the idle color when the config loads,
// bakes on its gates, and flips back by itself when the new color fails; a healthy one is
// promoted when its bake ends.
import Foundation
import TestSupport
import XCTest

final class RolloutFlipTests: EndToEndTestCase {
    private func config(green: UInt16, blue: EchoUpstream, bakeSeconds: Int) throws -> String {
        let dir = try temporaryDirectory()
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": { "checkout": { "blue": { "endpoints": ["\(blue.endpoint)"] },
                                       "green": { "endpoints": ["127.0.0.1:\(green)"] }, "live": "blue" } },
          "routes": [ { "name": "web", "upstream": "checkout",
                        "rollout": { "flip": { "bakeSeconds": \(bakeSeconds) }, "gates": { "maxErrorRate": 0.2, "minRequests": 5 } } } ],
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
        }
        """
    }

    private func drive(_ proxy: RunningProxy, until done: () throws -> Bool) throws {
        let client = try connect(proxy)
        XCTAssertTrue(try waitUntil(timeout: 30) {
            for _ in 0..<10 { _ = try? client.exchange(get("/")) }
            return try done()
        })
    }

    private func rollout(_ control: ControlLineClient) throws -> [String: Any] { try control.command("show rollout web") }

    private func live(_ control: ControlLineClient) throws -> String? {
        let upstreams = try control.command("show upstreams")["upstreams"] as? [[String: Any]]
        return upstreams?.first { $0["upstream"] as? String == "checkout" }?["live"] as? String
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
    }
}
