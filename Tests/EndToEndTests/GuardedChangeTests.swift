// Guarded changes on the real binary: a change with --bake is watched through the proxy's own
// outcome counters and reverted in one commit when what it moved traffic to fails; a healthy
// change stays; a transaction reverts as a whole; values changed by someone else are left alone.
import Foundation
import Glibc
import TestSupport
import XCTest

final class GuardedChangeTests: EndToEndTestCase {
    private let blueState = Switchable()
    private let greenState = Switchable()
    private let canaryState = Switchable()
    private var blue: RawServer!
    private var green: RawServer!
    private var canary: RawServer!

    override func setUpWithError() throws {
        try super.setUpWithError()
        blue = try startSwitchable(blueState, name: "blue")
        green = try startSwitchable(greenState, name: "green")
        canary = try startSwitchable(canaryState, name: "canary")
    }

    /// `checkout` blue/green (blue live) and `canary`; route `shop` splits stable (checkout) 100 /
    /// canary 0; control socket and admin listener.
    private func start(greenEndpoint: String? = nil, canaryEndpoint: String? = nil) throws -> (RunningProxy, ControlLineClient, UInt16) {
        let dir = try temporaryDirectory()
        let proxy = try startProxy(json: """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": {
            "checkout": { "blue": { "endpoints": ["127.0.0.1:\(blue.port)"] }, "green": { "endpoints": ["\(greenEndpoint ?? "127.0.0.1:\(green.port)")"] },
                          "live": "blue" },
            "canary": { "endpoints": ["\(canaryEndpoint ?? "127.0.0.1:\(canary.port)")"] }
          },
          "routes": [
            { "name": "shop", "split": [ { "variant": "stable", "upstream": "checkout", "weight": 100 },
                                         { "variant": "canary", "upstream": "canary", "weight": 0 } ],
              "override": { "trustedSources": ["0.0.0.0/0", "::/0"] } }
          ],
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" },
          "admin": { "address": "127.0.0.1:0" }
        }
        """)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "control socket "), proxy.process.stderr)
        let admin = try adminPort(proxy)
        return (proxy, try ControlLineClient(path: dir + "/control.sock"), admin)
    }

    /// One GET through the proxy: status and who answered.
    private func send(_ proxy: RunningProxy, _ extra: [String] = []) throws -> (status: Int, name: String?) {
        let r = try connect(proxy).exchange(get("/", extra))
        return (r.status, r.header("X-Name"))
    }

    /// Sends requests until the guard `id` has finished (or `timeout` passes); its record.
    private func driveUntilFinished(_ proxy: RunningProxy, _ control: ControlLineClient, id: Int, timeout: Double = 20,
                                    _ extra: [String] = []) throws -> [String: Any]? {
        var record: [String: Any]?
        _ = try waitUntil(timeout: timeout, interval: 0.01) {
            _ = try send(proxy, extra)
            let guards = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
            record = guards.first { $0["id"] as? Int == id }
            return (record?["state"] as? String).map { $0 != "baking" } ?? false
        }
        return record
    }

    func testAFlipToAFailingColorFlipsItselfBack() throws {
        let (proxy, control, admin) = try start()
        greenState.status = 500
        XCTAssertEqual(try send(proxy).name, "blue")

        let reply = try control.command("flip checkout --bake 60 --revert-if-error-rate 0.2 --min-requests 5")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        let guardValue = try XCTUnwrap(reply["guard"] as? [String: Any])
        XCTAssertEqual(guardValue["state"] as? String, "baking")
        XCTAssertNotNil(guardValue["deadline"] as? String)
        XCTAssertEqual(guardValue["watching"] as? [String], ["upstream checkout/green"])
        let version = try XCTUnwrap(reply["version"] as? Int)
        XCTAssertEqual(try send(proxy).status, 500, "the flip took effect at once")

        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: guardValue["id"] as? Int ?? 0))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        XCTAssertEqual(record["revertVersion"] as? Int, version + 1, "one commit reverts it")
        let reason = record["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("error rate of upstream checkout/green") && reason.contains("> limit 0.2"), reason)
        XCTAssertEqual(try live(control), "blue")

        // Stable traffic recovers: every request from now on is blue's 200.
        for _ in 0..<20 {
            let r = try send(proxy)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.name, "blue")
        }
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_guarded_reverts_total"] == 1 }
        XCTAssertEqual(m["switchyard_guarded_reverts_total"], 1)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "guard 1: reverted set live checkout green"), proxy.process.stderr)
    }

    func testAHealthyFlipStaysAfterTheBake() throws {
        let (proxy, control, admin) = try start()
        let reply = try control.command("flip checkout --bake 1.5 --revert-if-error-rate 0.05 --revert-if-p99-ms 5000")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0))
        XCTAssertEqual(record["state"] as? String, "passed", "\(record)")
        let readings = record["readings"] as? [[String: Any]] ?? []
        XCTAssertGreaterThan(readings.first?["requests"] as? Int ?? 0, 0, "\(record)")
        XCTAssertEqual(readings.first?["errors"] as? Int, 0)
        XCTAssertEqual(try live(control), "green")
        XCTAssertEqual(try send(proxy).name, "green")
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_guarded_reverts_total"], 0)
    }

    func testASlowColorIsRevertedOnItsP99() throws {
        let slow = try startEcho(name: "slow-green", delayMs: 300)
        let (proxy, control, _) = try start(greenEndpoint: slow.endpoint)
        let reply = try control.command("flip checkout --bake 60 --revert-if-error-rate 0.5 --revert-if-p99-ms 100 --min-requests 3")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        let reason = record["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("p99 of upstream checkout/green") && reason.contains("> limit 100 ms"), reason)
        XCTAssertEqual(try live(control), "blue")
    }

    func testASlowCanaryIsRevertedOnItsP99AgainstStable() throws {
        let slow = try startEcho(name: "slow-canary", delayMs: 600)
        let (proxy, control, _) = try start(canaryEndpoint: slow.endpoint)
        let reply = try control.command("set weights shop stable=50 canary=50 --bake 60 --revert-if-p99-ratio 3 --min-requests 3")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        let reason = record["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("p99 of variant shop/canary") && reason.contains("the p99 of variant shop/stable")
                      && reason.contains("> limit 3x"), reason)
        XCTAssertEqual(try weights(control), ["stable": 100, "canary": 0])
    }

    func testSetWeightsWithABakeRevertsAFailingCanary() throws {
        let (proxy, control, _) = try start()
        canaryState.status = 500
        let reply = try control.command("set weights shop stable=50 canary=50 --bake=60 --revert-if-error-rate=10% --min-requests 5")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        XCTAssertEqual((reply["guard"] as? [String: Any])?["watching"] as? [String], ["variant shop/canary"])
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        XCTAssertTrue((record["reason"] as? String ?? "").contains("variant shop/canary"), "\(record)")
        XCTAssertEqual(try weights(control), ["stable": 100, "canary": 0])
        for _ in 0..<20 { XCTAssertEqual(try send(proxy).name, "blue") }
    }

    func testAGuardBakesOnAfterKillAndRestartAndUnreadableSavedGuardsAreDropped() throws {
        var (proxy, control, _) = try start()
        let reply = try control.command("set weights shop stable=50 canary=50 --bake=60 --revert-if-error-rate=10% --min-requests 5")
        let id = try XCTUnwrap((reply["guard"] as? [String: Any])?["id"] as? Int, "\(reply)")
        let json = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
        let dir = try XCTUnwrap(json.range(of: #""stateFile": ""#).map { json[$0.upperBound...].prefix { $0 != "\"" } })
        proxy.process.kill()
        // A hand edits the state file meanwhile: one guard that is not JSON, one whose deadline is
        // no time, and a finished one whose number is the largest there is.
        let path = String(dir)
        var saved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var overrides = saved["overrides"] as? [String: Any] ?? saved
        var guards = try XCTUnwrap(overrides["guards"] as? [String: String], "the guard is saved: \(saved)")
        XCTAssertEqual(guards.count, 1)
        let original = Data(guards.values.first!.utf8)
        var far = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
        far["deadline"] = 1e300
        guards["hand-1"] = "{not json"
        guards["hand-2"] = String(decoding: try JSONSerialization.data(withJSONObject: far), as: UTF8.self)
        var huge = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
        huge["id"] = Int.max
        huge["outcome"] = "passed"
        huge["finished"] = huge["deadline"]
        guards["hand-3"] = String(decoding: try JSONSerialization.data(withJSONObject: huge), as: UTF8.self)
        overrides["guards"] = guards
        if saved["overrides"] != nil { saved["overrides"] = overrides } else { saved = overrides }
        try JSONSerialization.data(withJSONObject: saved).write(to: URL(fileURLWithPath: path))

        canaryState.status = 500
        proxy = try startProxy(json: json)
        control = try ControlLineClient(path: path.replacingOccurrences(of: "state.json", with: "control.sock"))
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "guard hand-1: the saved guard cannot be read"), proxy.process.stderr)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "guard hand-2: the saved guard cannot be read"), proxy.process.stderr)
        XCTAssertEqual(try weights(control), ["stable": 50, "canary": 50], "the change is in the state file")
        let listed = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
        XCTAssertEqual(listed.count, 2, "the baking guard and the finished one: \(listed)")
        XCTAssertFalse(listed.contains { $0["id"] as? Int == Int.max }, "an out-of-range number is not taken: \(listed)")
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: id))
        XCTAssertEqual(record["state"] as? String, "reverted", "the restarted proxy bakes on and reverts: \(record)")
        XCTAssertEqual(try weights(control), ["stable": 100, "canary": 0])
    }

    func testATransactionWithABakeRevertsAllItsChangesTogether() throws {
        let (proxy, control, _) = try start()
        greenState.status = 500
        XCTAssertEqual(try control.command("begin")["ok"] as? Bool, true)
        XCTAssertEqual(try control.command("flip checkout")["staged"] as? Bool, true)
        XCTAssertEqual(try control.command("set weights shop stable=70 canary=30")["staged"] as? Bool, true)
        let refused = try control.command("endpoint add canary 127.0.0.1:\(blue.port) --bake 5 --revert-if-error-rate 0.1")
        XCTAssertEqual(refused["ok"] as? Bool, false, "a staged change does not bake on its own")
        XCTAssertEqual(try control.command("endpoint add canary 127.0.0.1:\(blue.port)")["staged"] as? Bool, true)
        let reply = try control.command("commit --bake 60 --revert-if-error-rate 0.2 --min-requests 5")
        XCTAssertEqual(reply["committed"] as? Int, 3, "\(reply)")
        let version = try XCTUnwrap(reply["version"] as? Int)
        let id = (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0

        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: id))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        XCTAssertEqual(record["revertVersion"] as? Int, version + 1, "every change is reverted in one commit")
        XCTAssertEqual(try live(control), "blue")
        XCTAssertEqual(try weights(control), ["stable": 100, "canary": 0])
        let endpoints = try control.command("show upstreams")["endpoints"] as? [[String: Any]] ?? []
        XCTAssertEqual(endpoints.filter { $0["upstream"] as? String == "canary" }.map { $0["address"] as? String },
                       ["127.0.0.1:\(canary.port)"])
        let state = try control.command("show state")
        XCTAssertEqual((state["overrides"] as? [Any])?.count ?? 0, 0, "\(state)")
        for _ in 0..<20 { XCTAssertEqual(try send(proxy).status, 200) }
    }

    func testAnAllAtOnceEndpointDeployIsUndone() throws {
        let (proxy, control, _) = try start()
        let nextState = Switchable()
        nextState.status = 503
        let next = try startSwitchable(nextState, name: "canary-next")
        let toCanary = ["X-Switchyard-Variant: canary"]
        XCTAssertEqual(try send(proxy, toCanary).name, "canary")
        _ = try control.command("begin")
        XCTAssertEqual(try control.command("endpoint add canary 127.0.0.1:\(next.port)")["staged"] as? Bool, true)
        XCTAssertEqual(try control.command("endpoint remove canary 127.0.0.1:\(canary.port)")["staged"] as? Bool, true)
        let reply = try control.command("commit --bake 60 --revert-if-error-rate 0.2 --min-requests 5")
        let guardValue = try XCTUnwrap(reply["guard"] as? [String: Any], "\(reply)")
        XCTAssertEqual(guardValue["watching"] as? [String], ["upstream canary"])
        XCTAssertEqual((guardValue["touched"] as? [[String: Any]])?.count, 2)

        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: guardValue["id"] as? Int ?? 0, toCanary))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        let endpoints = try control.command("show upstreams")["endpoints"] as? [[String: Any]] ?? []
        XCTAssertEqual(endpoints.filter { $0["upstream"] as? String == "canary" }.map { $0["address"] as? String },
                       ["127.0.0.1:\(canary.port)"])
        XCTAssertEqual((try control.command("show state")["overrides"] as? [Any])?.count ?? 0, 0)
        for _ in 0..<10 { XCTAssertEqual(try send(proxy, toCanary).name, "canary") }
    }

    /// A change with a bake, the weights set back, then the same change with a bake of its
    /// own: when the canary fails, the second guard reverts its change and the first, whose
    /// change was undone in between, reverts nothing (it reverted the second's before).
    func testAGuardOnlyRevertsItsOwnChange() throws {
        let (proxy, control, _) = try start()
        let change = "set weights shop stable=50 canary=50 --bake=60 --revert-if-error-rate=10% --min-requests 5"
        let first = try control.command(change)
        let firstID = (first["guard"] as? [String: Any])?["id"] as? Int ?? 0
        XCTAssertEqual(try control.command("set weights shop stable=100 canary=0")["ok"] as? Bool, true)
        let second = try control.command(change)
        let secondID = (second["guard"] as? [String: Any])?["id"] as? Int ?? 0
        XCTAssertNotEqual(firstID, secondID)
        canaryState.status = 500
        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: secondID))
        XCTAssertEqual(record["state"] as? String, "reverted", "the second guard reverts its own change: \(record)")
        let guards = try control.command("show guards")["guards"] as? [[String: Any]] ?? []
        let older = try XCTUnwrap(guards.first { $0["id"] as? Int == firstID }, "\(guards)")
        XCTAssertNotEqual(older["state"] as? String, "reverted", "the first guard's change was undone before: \(older)")
        XCTAssertEqual(try weights(control), ["stable": 100, "canary": 0])
    }

    func testValuesChangedDuringTheBakeAreNotClobbered() throws {
        let (proxy, control, _) = try start()
        greenState.status = 500
        _ = try control.command("begin")
        _ = try control.command("flip checkout")
        _ = try control.command("set weights shop stable=70 canary=30")
        let reply = try control.command("commit --bake 60 --revert-if-error-rate 0.2 --min-requests 5")
        let id = (reply["guard"] as? [String: Any])?["id"] as? Int ?? 0
        // Another operator moves the canary meanwhile.
        let other = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try other.command("set weights shop stable=90 canary=10")["ok"] as? Bool, true)

        let record = try XCTUnwrap(try driveUntilFinished(proxy, control, id: id))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        let left = record["notReverted"] as? [String] ?? []
        XCTAssertEqual(left.count, 2, "\(record)")
        XCTAssertTrue(left.allSatisfy { $0.contains("changed since, left alone") }, "\(left)")
        XCTAssertEqual(try live(control), "blue")
        XCTAssertEqual(try weights(control), ["stable": 90, "canary": 10])
    }

    func testAFleetFlipBakesOnEveryInstanceAndEachRevertsOnItsOwnCounters() throws {
        greenState.status = 500
        let dir = try temporaryDirectory()
        let bluePool = pool("127.0.0.1:\(blue.port)"), greenPool = pool("127.0.0.1:\(green.port)")
        let checkout = #"{ "blue": \#(bluePool), "green": \#(greenPool), "live": "blue" }"#
        var proxies: [RunningProxy] = []
        var sockets: [String] = []
        for name in ["a", "b"] {
            sockets.append("\(dir)/\(name).sock")
            proxies.append(try startProxy(json: routingConfig(upstreams: [("checkout", checkout)],
                                                              routes: [#"{ "name": "shop", "upstream": "checkout" }"#],
                                                              controlSocket: sockets.last!)))
        }
        let result = try ChildProcess.run(switchyard: ["ctl"] + sockets.flatMap { ["--socket", $0] }
            + ["flip", "checkout", "--bake", "60", "--revert-if-error-rate", "0.2", "--min-requests", "5"])
        XCTAssertEqual(result.termination, .exited(0), result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("committed on all 2 instances"), result.stdout)
        // Only instance a sees traffic: a reverts, b (no traffic) keeps baking.
        let a = try ControlLineClient(path: sockets[0]), b = try ControlLineClient(path: sockets[1])
        let record = try XCTUnwrap(try driveUntilFinished(proxies[0], a, id: 1))
        XCTAssertEqual(record["state"] as? String, "reverted", "\(record)")
        XCTAssertEqual(((try b.command("show guards")["guards"] as? [[String: Any]])?.first)?["state"] as? String, "baking")
        XCTAssertEqual(try live(a), "blue")
        XCTAssertEqual(try live(b), "green")
    }

    /// What `switchyard ctl` prints fits a 100-column terminal: `help`'s long usages and a
    /// guard's readings wrap instead of stretching every line to the widest one.
    func testTextRepliesFitOneHundredColumns() throws {
        let (proxy, control, _) = try start()
        let reply = try control.command("set weights shop stable=90 canary=10 --bake 60 --revert-if-error-rate 0.2 "
            + "--revert-if-p99-ms 500 --min-requests 1000")
        XCTAssertEqual(reply["ok"] as? Bool, true, "\(reply)")
        for _ in 0..<5 { _ = try send(proxy) }
        let socket = try temporaryDirectory() + "/control.sock"
        for command in [["help"], ["show", "guards"], ["help", "rollout", "start"]] {
            let printed = try ChildProcess.run(switchyard: ["ctl", "--socket", socket] + command)
            XCTAssertEqual(printed.termination, .exited(0), printed.stderr)
            let wide = printed.stdout.split(separator: "\n").map(String.init).filter { $0.count > 100 }
            XCTAssertEqual(wide, [], "\(command.joined(separator: " ")) prints lines over 100 columns")
            XCTAssertFalse(printed.stdout.isEmpty)
        }
        let guards = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "show", "guards"]).stdout
        XCTAssertTrue(guards.contains("baking") && guards.contains("0.2"), guards)
        let help = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "help"]).stdout
        XCTAssertTrue(help.contains("rollout start ROUTE VARIANT") && help.contains("--max-error-rate"), help)
    }

    func testOptionsAreCheckedAndListed() throws {
        let (_, control, _) = try start()
        let noLimit = try control.command("flip checkout --bake 10")
        XCTAssertEqual(noLimit["ok"] as? Bool, false)
        XCTAssertTrue((noLimit["error"] as? String ?? "").contains("needs a limit"), "\(noLimit)")
        let noBake = try control.command("flip checkout --revert-if-error-rate 0.1")
        XCTAssertEqual(noBake["ok"] as? Bool, false)
        let badRate = try control.command("set weights shop canary=5 --bake 10 --revert-if-error-rate 2")
        XCTAssertEqual(badRate["ok"] as? Bool, false)
        XCTAssertEqual(try live(control), "blue", "a refused option changes nothing")

        let help = try ctl(["help"])
        XCTAssertTrue(help.stdout.contains("--bake SECONDS --revert-if-error-rate R"), help.stdout)
        XCTAssertTrue(help.stdout.contains("show guards"), help.stdout)
        let run = try ctl(["--json", "flip", "checkout", "--no-warmup", "--bake", "30", "--revert-if-error-rate", "0.5"])
        XCTAssertEqual(run.termination, .exited(0), run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.contains(#""guard":{"id":1"#), run.stdout)
        let shown = try ctl(["show", "guards"])
        XCTAssertEqual(shown.termination, .exited(0), shown.stderr)
        XCTAssertTrue(shown.stdout.contains("baking"), shown.stdout)
    }
}
