// A canary of a blue/green upstream's idle color, ended by a flip: the variant `next` is served
// by the idle color, the rollout's steps move users onto it, and at its last step one commit
// flips the colors and gives the baseline every request back (now served by the new live
// color), guarded for a bake that flips back on a breach.
import Foundation
import TestSupport
import XCTest

final class RolloutCanaryFlipTests: EndToEndTestCase {
    private func config(blue: UInt16, green: UInt16, bakeSeconds: Int, shadow: String? = nil) throws -> String {
        let stage = shadow.map { "\"shadow\": \($0), " } ?? ""
        return try checkoutConfig(blue: "127.0.0.1:\(blue)", green: "127.0.0.1:\(green)", routes: """
            [ { "name": "shop",
                "split": [ { "variant": "stable", "upstream": "checkout", "weight": 100 },
                           { "variant": "next", "upstream": "checkout", "color": "idle", "weight": 0 } ],
                "rollout": { \(stage)"variant": "next", "steps": [50, 100], "stepSeconds": 1,
                             "flip": { "bakeSeconds": \(bakeSeconds) },
                             "gates": { "maxErrorRate": 0.2, "minRequests": 5 } } } ]
            """)
    }

    private func rollout(_ control: ControlLineClient) throws -> [String: Any] { try control.command("show rollout shop") }

    private func events(_ r: [String: Any]) -> [String] {
        (r["history"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
    }

    func testACanaryOfTheIdleColorEndsInAFlipAndTheBaselineServesEveryone() throws {
        let blue = try startSwitchable(Switchable(), name: "blue")
        let green = try startSwitchable(Switchable(), name: "green")
        let proxy = try startProxy(json: try config(blue: blue.port, green: green.port, bakeSeconds: 1))
        let control = try ControlLineClient(path: try controlSocket())
        let variants = try control.command("show routes")["variants"] as? [[String: Any]] ?? []
        XCTAssertEqual(variants.first { $0["variant"] as? String == "next" }?["color"] as? String, "idle", "\(variants)")
        let halfway = try answers(proxy, header: "X-Name") { (try rollout(control))["state"] as? String != "running" }
        XCTAssertTrue(halfway.contains("green"), "the canary of the idle color is served by green")
        _ = try answers(proxy, header: "X-Name") { (try rollout(control))["state"] as? String == "promoted" }
        XCTAssertEqual(try live(control), "green")
        XCTAssertEqual(try weights(control), ["stable": 100, "next": 0], "the baseline serves everyone, on the new live color")
        let r = try rollout(control)
        XCTAssertEqual(events(r).filter { ["step", "flip", "promote"].contains($0) }, ["step", "step", "flip", "promote"], "\(r)")
        for _ in 0..<10 { XCTAssertEqual(try connect(proxy).exchange(get("/")).header("X-Name"), "green") }
    }

    func testABadBakeAfterTheStepsFlipsBackAndTheOldColorServesEveryone() throws {
        let greenState = Switchable()
        let blue = try startSwitchable(Switchable(), name: "blue")
        let green = try startSwitchable(greenState, name: "green")
        let proxy = try startProxy(json: try config(blue: blue.port, green: green.port, bakeSeconds: 60))
        let control = try ControlLineClient(path: try controlSocket())
        _ = try answers(proxy, header: "X-Name") { (try rollout(control))["state"] as? String == "baking" }
        XCTAssertEqual(try live(control), "green", "flipped at the last step")
        XCTAssertEqual(try weights(control), ["stable": 100, "next": 0])
        // The new version breaks after the flip: the bake sees it and flips back.
        greenState.status = 500
        _ = try answers(proxy, header: "X-Name") { (try rollout(control))["state"] as? String == "rolled_back" }
        XCTAssertEqual(try live(control), "blue")
        XCTAssertEqual(try weights(control), ["stable": 100, "next": 0], "the weights stay: the baseline is on the old color again")
        let reason = try rollout(control)["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("flipped back") && reason.contains("error rate"), reason)
        for _ in 0..<10 { XCTAssertEqual(try connect(proxy).exchange(get("/")).header("X-Name"), "blue") }
    }

    func testAShadowStageBeforeTheStepsCopiesToTheIdleColor() throws {
        let blue = try startSwitchable(Switchable(), name: "blue")
        let (green, heads) = try startRecording(name: "green")
        let proxy = try startProxy(json: try config(blue: blue.port, green: green.port, bakeSeconds: 1, shadow: #"{ "minCompared": 100 }"#))
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing")
        let during = try answers(proxy, header: "X-Name") { heads.value.count >= 20 }
        XCTAssertEqual(Set(during), ["blue"], "users on the live color while the idle one shadows")
        XCTAssertTrue(heads.value.allSatisfy { $0.contains("X-Switchyard-Shadow: 1") }, "only copies reach green")
        _ = try answers(proxy, header: "X-Name") { (try rollout(control))["state"] as? String == "promoted" }
        let r = try rollout(control)
        XCTAssertEqual(events(r).filter { ["shadow", "shadow_passed", "step", "flip", "promote"].contains($0) },
                       ["shadow", "shadow_passed", "step", "step", "flip", "promote"], "\(r)")
        XCTAssertEqual(try live(control), "green")
    }

    func testAFlipAfterStepsNeedsAVariantOfTheIdleColor() throws {
        let text = """
        { "listeners": [ { "address": "127.0.0.1:0" } ],
          "upstreams": { "checkout": { "blue": { "endpoints": ["127.0.0.1:9"] }, "green": { "endpoints": ["127.0.0.1:9"] } },
                         "canary": { "endpoints": ["127.0.0.1:9"] } },
          "routes": [ { "name": "shop",
                        "split": [ { "variant": "stable", "upstream": "checkout", "weight": 100 },
                                   { "variant": "next", "upstream": "canary", "weight": 0 } ],
                        "rollout": { "variant": "next", "steps": [50, 100], "flip": { "bakeSeconds": 5 },
                                     "gates": { "maxErrorRate": 0.1 } } } ] }
        """
        let result = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("bad.json", text)])
        XCTAssertTrue(result.stderr.contains(#"routes[0].rollout.flip: on a split, the variant must be the idle color"#), result.stderr)
        let plain = """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "canary": { "endpoints": ["127.0.0.1:9"] } },
          "routes": [ { "name": "shop", "split": [ { "variant": "next", "upstream": "canary", "color": "idle", "weight": 1 } ] } ] }
        """
        let second = try ChildProcess.run(switchyard: ["check", "--config", try writeFile("idle.json", plain)])
        XCTAssertTrue(second.stderr.contains(#"routes[0].split[0].color: upstream "canary" has no colors"#), second.stderr)
    }
}
