// Progressive rollouts on real sockets with one-second steps: a canary failing 10% of its
// requests is rolled back within its first step while stable answers everything; a healthy one
// walks every step to 100%; kill -9 mid-rollout and the restarted proxy goes on at its step; the
// gates read a (fake) Prometheus HTTP API in fleet mode.
import Foundation
import TestSupport
import XCTest

final class RolloutTests: EndToEndTestCase {
    /// A canary answering 500 to every `failEvery`-th request (0: never), naming itself.
    func startCanary(failEvery: Int) throws -> RawServer {
        let counter = Counter()
        return try startServer { conn, _ in
            while conn.readHead() != nil {
                let n = counter.next()
                let status = failEvery > 0 && n % failEvery == 0 ? 500 : 200
                _ = conn.send("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Internal Server Error")\r\nContent-Length: 6\r\nX-Name: canary\r\n\r\ncanary")
            }
        }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> Int { lock.withLock { n += 1; return n } }
    }


    /// Sends requests on keep-alive connections until `done` (asked between batches of 20) holds
    /// or `timeout` passes; every (X-Name, status) seen.
    func drive(_ proxy: RunningProxy, timeout: Double = 40, until done: () throws -> Bool) throws -> [(name: String, status: Int)] {
        var seen: [(name: String, status: Int)] = []
        let deadline = Date(timeIntervalSinceNow: timeout)
        var client = try connect(proxy)
        while Date() < deadline {
            if try done() { return seen }
            for _ in 0..<20 {
                let r: HTTPResponse
                do { r = try client.exchange(get("/")) } catch {
                    client = try connect(proxy)
                    continue
                }
                seen.append((r.header("X-Name") ?? "?", r.status))
                if r.header("Connection")?.lowercased() == "close" { client = try connect(proxy) }
            }
        }
        XCTAssertTrue(try done(), "the condition did not hold within \(timeout) s")
        return seen
    }

    func rollout(_ control: ControlLineClient) throws -> [String: Any] {
        let r = try control.command("show rollout shop")
        XCTAssertEqual(r["ok"] as? Bool, true, "\(r)")
        return r
    }

    func testFailingCanaryIsRolledBackWithinItsFirstStepAndStableNeverFails() throws {
        let stableState = Switchable()
        let stable = try startSwitchable(stableState, name: "stable")
        let canary = try startCanary(failEvery: 10)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 1, "maxStepSeconds": 60,
              "gates": { "maxErrorRate": 0.05, "minRequests": 20 } }
            """)
        let proxy = try startProxy(json: json)
        let admin = try adminPort(proxy)
        let control = try ControlLineClient(path: try controlSocket())
        let seen = try drive(proxy) { (try rollout(control))["state"] as? String == "rolled_back" }
        let r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1, "rolled back at the end of its first step: \(r)")
        XCTAssertEqual(r["weight"] as? Int, 0)
        let reason = r["reason"] as? String ?? ""
        XCTAssertTrue(reason.contains("maxErrorRate") && reason.contains("> 0.05"), reason)
        XCTAssertTrue(seen.contains { $0.name == "canary" }, "the canary took part")
        XCTAssertEqual(seen.filter { $0.name == "stable" && $0.status != 200 }.count, 0, "stable requests never fail")
        XCTAssertEqual(seen.filter { $0.name != "stable" && $0.name != "canary" }.count, 0, "no proxy errors")
        // After the rollback every request goes to stable.
        var client = try connect(proxy)
        for _ in 0..<50 {
            let response = try client.exchange(get("/"))
            XCTAssertEqual(response.header("X-Name"), "stable")
            if response.header("Connection")?.lowercased() == "close" { client = try connect(proxy) }
        }
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_rollout_state{route=\"shop\",state=\"rolled_back\"}"] == 1 }
        XCTAssertEqual(m["switchyard_rollout_state{route=\"shop\",state=\"rolled_back\"}"], 1)
        XCTAssertEqual(m["switchyard_route_weight{route=\"shop\",variant=\"canary\"}"], 0)
        XCTAssertEqual(m["switchyard_rollout_events_total{route=\"shop\",event=\"rollback\"}"], 1)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "\"event\":\"rollback\""), "a structured log line")
    }

    func testABrokenCanaryIsRolledBackLongBeforeItsStepEnds() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 1)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 300,
              "gates": { "maxErrorRate": 0.05, "minRequests": 20 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        let started = Date()
        let seen = try drive(proxy, timeout: 20) { (try rollout(control))["state"] as? String == "rolled_back" }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "not at the end of the 300-second step")
        let r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("judged early"), "\(r)")
        XCTAssertGreaterThanOrEqual(seen.filter { $0.name == "canary" }.count, 20, "not before minRequests")
    }

    func testACanaryBelowItsErrorLimitIsNotRolledBackEarly() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 100)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [50, 100], "stepSeconds": 300,
              "gates": { "maxErrorRate": 0.05, "minRequests": 20 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        var looks = 0
        let seen = try drive(proxy) {
            looks += 1
            return try looks > 100 || (try rollout(control))["state"] as? String != "running"
        }
        XCTAssertGreaterThan(seen.filter { $0.name == "canary" && $0.status == 500 }.count, 0, "the canary failed some")
        XCTAssertEqual(try rollout(control)["state"] as? String, "running", "1% errors under a 5% gate")
    }

    /// A new version that answers 500 to every `failEvery`-th request (0: never) and keeps each
    /// request head it gets.
    private func startRecordingCanary(failEvery: Int) throws -> (RawServer, Locked<[String]>) {
        let heads = Locked<[String]>([])
        let counter = Counter()
        let server = try startServer { conn, _ in
            while let head = conn.readHead() {
                heads.mutate { $0.append(head) }
                let n = counter.next()
                let status = failEvery > 0 && n % failEvery == 0 ? 500 : 200
                _ = conn.send("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Internal Server Error")\r\nContent-Length: 6\r\nX-Name: canary\r\n\r\ncanary")
            }
        }
        return (server, heads)
    }

    func testAShadowThatAnswersDifferentlyEndsTheRolloutBeforeAnyUserReachesIt() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let (canary, heads) = try startRecordingCanary(failEvery: 50)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 100], "stepSeconds": 300,
              "shadow": { "minCompared": 300, "minMatchRate": 0.995, "maxSeconds": 60 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing")
        XCTAssertEqual(try mirrors(control), [["canary": 100]], "the copies go to the new version")
        let seen = try drive(proxy) { (try rollout(control))["state"] as? String == "rolled_back" }
        XCTAssertEqual(try mirrors(control), [], "and stop with the rollout")
        let r = try rollout(control)
        let reason = r["reason"] as? String ?? ""
        XCTAssertTrue(reason.hasPrefix("shadow: match rate"), reason)
        XCTAssertTrue(reason.contains("status 200 vs 500"), "the mismatches in the reason: \(reason)")
        XCTAssertEqual(seen.filter { $0.name != "stable" }.count, 0, "every user answered by stable")
        let got = heads.value
        XCTAssertGreaterThanOrEqual(got.count, 300)
        XCTAssertTrue(got.allSatisfy { $0.contains("X-Switchyard-Shadow: 1") }, "only copies reached the new version")
    }

    func testAnIdenticalShadowPassesToTheFirstStep() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let (canary, _) = try startRecordingCanary(failEvery: 0)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 100], "stepSeconds": 300, "shadow": { "minCompared": 200, "maxP99Ratio": 50 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "running" }
        let r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1)
        XCTAssertEqual(r["weight"] as? Int, 10)
        let events = (r["history"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
        XCTAssertEqual(Array(events.prefix(4)), ["start", "shadow", "shadow_passed", "step"], "\(events)")
        XCTAssertEqual(try mirrors(control), [], "the copies stopped when the first step began")
    }

    /// The route's mirrors, upstream to percent.
    private func mirrors(_ control: ControlLineClient) throws -> [[String: Double]] {
        let list = try control.command("show routes")["mirrors"] as? [[String: Any]] ?? []
        return list.map { [$0["upstream"] as? String ?? "?": $0["percent"] as? Double ?? -1] }
    }

    func testAnApprovalStepWaitsForRolloutApprove() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, "approve", 100], "stepSeconds": 1, "gates": { "maxErrorRate": 0.05 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try control.command("rollout approve shop")["ok"] as? Bool, false, "nothing waits yet")
        _ = try drive(proxy) { ((try rollout(control))["reason"] as? String ?? "").contains("waits for approval") }
        // Held: the step's second is long over, and it stays at 10% while nobody approves.
        _ = try drive(proxy) { try (rollout(control))["history"].map { ($0 as? [Any])?.count ?? 0 } ?? 0 >= 3 }
        var r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1)
        XCTAssertEqual(r["weight"] as? Int, 10)
        XCTAssertEqual(r["state"] as? String, "waiting")
        XCTAssertEqual(try control.command("rollout approve shop")["ok"] as? Bool, true)
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        r = try rollout(control)
        let events = (r["history"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
        XCTAssertTrue(events.contains("approve"), "\(events)")
    }

    func testAWebhookGateHoldsTheStepUntilItAnswers2xx() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let allow = Locked(false)
        let bodies = Locked<[String]>([])
        let hook = try startServer { conn, _ in
            while let head = conn.readHead() {
                guard let body = conn.readBody(after: head) else { return }
                bodies.mutate { $0.append(String(decoding: body, as: UTF8.self)) }
                // Closed after each answer, as a server does for the HTTP/1.0 requests the control plane sends.
                conn.send((allow.value ? "HTTP/1.1 200 OK" : "HTTP/1.1 503 Not Yet") + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            }
        }
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 100], "stepSeconds": 1,
              "gates": { "maxErrorRate": 0.05, "webhook": { "url": "http://127.0.0.1:\(hook.port)/confirm" } } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        _ = try drive(proxy) { ((try rollout(control))["reason"] as? String ?? "").contains("answered 503") }
        var r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1)
        XCTAssertEqual(r["weight"] as? Int, 10, "held at its step")
        allow.value = true
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        r = try rollout(control)
        XCTAssertEqual(r["weight"] as? Int, 100)
        let first = try XCTUnwrap(bodies.value.first)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        XCTAssertEqual(object["route"] as? String, "shop")
        XCTAssertEqual(object["nextWeight"] as? Int, 100)
    }

    func testADryRunGateLogsWhatItWouldHaveDoneAndDoesNotAct() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 1)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 100], "stepSeconds": 1,
              "gates": { "maxErrorRate": 0.05, "minRequests": 5, "dryRun": ["maxErrorRate"] } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        let history = (try rollout(control))["history"] as? [[String: Any]] ?? []
        let details = history.compactMap { $0["detail"] as? String }
        XCTAssertTrue(details.contains { $0.contains("maxErrorRate 1 > 0.05") && $0.contains("dry run: would have rolled back") },
                      "\(details)")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "dry run: would have rolled back"))
    }

    func testHealthyCanaryReachesFullTrafficThroughEveryStep() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 1,
              "gates": { "maxErrorRate": 0.01, "maxErrorRateRatio": 2, "minRequests": 5 } }
            """)
        let proxy = try startProxy(json: json)
        let admin = try adminPort(proxy)
        let control = try ControlLineClient(path: try controlSocket())
        let seen = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        let r = try rollout(control)
        XCTAssertEqual(r["weight"] as? Int, 100)
        XCTAssertEqual(r["step"] as? Int, 3)
        let history = r["history"] as? [[String: Any]] ?? []
        let steps = history.filter { $0["event"] as? String == "step" }.compactMap { $0["detail"] as? String }
        XCTAssertEqual(steps.count, 3, "\(history)")
        for (i, w) in [10, 50, 100].enumerated() { XCTAssertTrue(steps[i].contains("at \(w)%"), steps[i]) }
        XCTAssertEqual(history.last?["event"] as? String, "promote")
        XCTAssertEqual(seen.filter { $0.status != 200 }.count, 0)
        var client = try connect(proxy)
        for _ in 0..<20 { XCTAssertEqual(try client.exchange(get("/")).header("X-Name"), "canary") }
        client = try connect(proxy)
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_rollout_state{route=\"shop\",state=\"promoted\"}"] == 1 }
        XCTAssertEqual(m["switchyard_rollout_step{route=\"shop\",variant=\"canary\"}"], 3)
        XCTAssertEqual(m["switchyard_route_weight{route=\"shop\",variant=\"canary\"}"], 100)
        XCTAssertEqual(m["switchyard_rollout_events_total{route=\"shop\",event=\"step\"}"], 3)
    }

    func testAShadowStageAndAWaitingApprovalSurviveKillAndRestart() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let (canary, heads) = try startRecordingCanary(failEvery: 0)
        var json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, "approve", 100], "stepSeconds": 1, "shadow": { "minCompared": 100 } }
            """)
        var proxy = try startProxy(json: json)
        var control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing")
        proxy.process.kill()
        proxy = try startProxy(json: json)
        control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try rollout(control)["state"] as? String, "shadowing", "still in its shadow stage")
        XCTAssertEqual(try mirrors(control), [["canary": 100]], "with its copies")
        _ = try drive(proxy) { ((try rollout(control))["reason"] as? String ?? "").contains("waits for approval") }
        XCTAssertGreaterThanOrEqual(heads.value.count, 100, "compared copies passed the stage")
        proxy.process.kill()
        json = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
        proxy = try startProxy(json: json)
        control = try ControlLineClient(path: try controlSocket())
        let after = try rollout(control)
        XCTAssertEqual(after["state"] as? String, "waiting", "\(after)")
        XCTAssertEqual(after["weight"] as? Int, 10)
        _ = try drive(proxy, timeout: 10) { ((try rollout(control))["reason"] as? String ?? "").contains("waits for approval") }
        XCTAssertEqual(try control.command("rollout approve shop")["ok"] as? Bool, true)
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
    }

    func testKillMidRolloutAndRestartResumesAtItsStep() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: nil)
        var proxy = try startProxy(json: json)
        _ = try adminPort(proxy)
        var control = try ControlLineClient(path: try controlSocket())
        let started = try control.command("rollout start shop canary --steps 10,50,100 --step-seconds 1 --min-requests 30 --max-step-seconds 600")
        XCTAssertEqual(started["ok"] as? Bool, true, "\(started)")
        XCTAssertEqual(started["weight"] as? Int, 10, "the first step applies at once")
        _ = try drive(proxy) { (try rollout(control))["step"] as? Int == 2 }
        // No more traffic: step 2 waits for minRequests, so the rollout holds at 50%.
        XCTAssertEqual(try rollout(control)["weight"] as? Int, 50)
        proxy.process.kill()
        proxy = try startProxy(json: json)
        let admin = try adminPort(proxy)
        control = try ControlLineClient(path: try controlSocket())
        let after = try rollout(control)
        XCTAssertEqual(after["step"] as? Int, 2, "continues at its step: \(after)")
        XCTAssertEqual(after["weight"] as? Int, 50)
        XCTAssertEqual(after["state"] as? String, "running")
        let history = after["history"] as? [[String: Any]] ?? []
        XCTAssertEqual(history.filter { $0["event"] as? String == "step" }.count, 2, "history kept: \(history)")
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m["switchyard_route_weight{route=\"shop\",variant=\"canary\"}"], 50, "the weight it reached routes at once")
        XCTAssertEqual(m["switchyard_rollout_step{route=\"shop\",variant=\"canary\"}"], 2)
        // ctl --json answers the documented fields.
        let out = try ctl(["--json", "show", "rollout", "shop"])
        let object = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(object["state"] as? String, "running", out.stdout + out.stderr)
        XCTAssertEqual(object["step"] as? Int, 2)
        XCTAssertEqual(object["weight"] as? Int, 50)
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "promoted" }
        let done = try rollout(control)
        XCTAssertEqual((done["history"] as? [[String: Any]] ?? []).filter { $0["event"] as? String == "step" }.count, 3,
                       "never started over")
    }

    func testReloadKeepsARunningRolloutAndANewPlanStartsOver() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let plan = #"{ "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 1, "maxStepSeconds": 600, "gates": { "minRequests": 30 } }"#
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: plan)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        _ = try drive(proxy) { (try rollout(control))["step"] as? Int == 2 }
        let reload = try control.command("reload")
        XCTAssertEqual(reload["ok"] as? Bool, true, "\(reload)")
        let after = try rollout(control)
        XCTAssertEqual(after["step"] as? Int, 2, "a reload never starts it over: \(after)")
        XCTAssertEqual(after["weight"] as? Int, 50)
        // A changed plan in the file is a new rollout.
        let changed = plan.replacingOccurrences(of: "[10, 50, 100]", with: "[20, 100]")
        try rolloutConfig(stable: stable.port, canary: canary.port, rollout: changed).write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        XCTAssertEqual(try control.command("reload")["ok"] as? Bool, true)
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.rollout(control))?["weight"] as? Int == 20 })
        let fresh = try rollout(control)
        XCTAssertEqual(fresh["step"] as? Int, 1)
        XCTAssertEqual(fresh["steps"] as? [Int], [20, 100])
    }

    /// Users keyed by X-User-Id: through every step a user moves from stable to canary at most
    /// once and never back (bucket ranges only grow).
    func testStickyUsersOnlyEverMoveToTheCanary() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        var json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: nil)
        json = json.replacingOccurrences(of: #""weight": 0 } ]"#, with: #""weight": 0 } ], "sticky": { "key": { "header": "X-User-Id" } }"#)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        let started = try control.command("rollout start shop canary --steps 10,50,100 --step-seconds 1 --min-requests 10")
        XCTAssertEqual(started["ok"] as? Bool, true, "\(started)")
        var history: [Int: [String]] = [:]
        var client = try connect(proxy)
        let deadline = Date(timeIntervalSinceNow: 40)
        while Date() < deadline, (try rollout(control))["state"] as? String != "promoted" {
            for user in 0..<100 {
                let r = try client.exchange(get("/", ["X-User-Id: user-\(user)"]))
                XCTAssertEqual(r.status, 200)
                let name = r.header("X-Name") ?? "?"
                if history[user]?.last != name { history[user, default: []].append(name) }
                if r.header("Connection")?.lowercased() == "close" { client = try connect(proxy) }
            }
        }
        XCTAssertEqual((try rollout(control))["state"] as? String, "promoted")
        for (user, seen) in history {
            XCTAssertTrue(seen == ["canary"] || seen == ["stable", "canary"], "user-\(user): \(seen)")
        }
        XCTAssertTrue(history.values.contains { $0 == ["stable", "canary"] }, "users moved during the rollout")
    }

    /// A canary 150 ms slower than stable fails maxP99Ratio, read from the latency histograms.
    func testSlowCanaryIsRolledBackOnItsP99() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startServer { conn, _ in
            while conn.readHead() != nil {
                usleep(150_000)
                _ = conn.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Name: canary\r\n\r\ncanary")
            }
        }
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [20, 100], "stepSeconds": 1, "gates": { "maxP99Ratio": 3, "minRequests": 10 } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        _ = try drive(proxy) { (try rollout(control))["state"] as? String == "rolled_back" }
        let r = try rollout(control)
        XCTAssertTrue((r["reason"] as? String ?? "").hasPrefix("gate maxP99Ratio"), "\(r)")
        XCTAssertEqual(r["step"] as? Int, 1)
    }

    /// Outside its window a configured rollout waits at 0%.
    func testRolloutWaitsOutsideItsWindow() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let hour = utc.component(.hour, from: Date())
        let window = String(format: "{ \"start\": \"%02d:00\", \"end\": \"%02d:00\", \"timeZone\": \"UTC\" }", (hour + 2) % 24, (hour + 3) % 24)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "preset": "canary-10-5m", "window": \(window) }
            """)
        let proxy = try startProxy(json: json)
        let admin = try adminPort(proxy)
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.rollout(control))?["state"] as? String == "waiting" })
        let r = try rollout(control)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("outside the window"), "\(r)")
        XCTAssertEqual(r["weight"] as? Int, 0)
        XCTAssertEqual(r["step"] as? Int, 0)
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_rollout_state{route=\"shop\",state=\"waiting\"}"] == 1 }
        XCTAssertEqual(m["switchyard_route_weight{route=\"shop\",variant=\"canary\"}"], 0)
        XCTAssertEqual(try servedByName(proxy), "stable")
    }

    func testControlCommandsPauseResumeAbort() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let proxy = try startProxy(json: try rolloutConfig(stable: stable.port, canary: canary.port, rollout: nil))
        _ = proxy
        let control = try ControlLineClient(path: try controlSocket())
        let bad = try control.command("rollout start shop canray")
        XCTAssertEqual(bad["ok"] as? Bool, false)
        XCTAssertTrue((bad["error"] as? String ?? "").contains("did you mean \"canary\""), "\(bad)")
        XCTAssertEqual(try control.command("rollout start shop canary --steps 10,5")["ok"] as? Bool, false)
        let s = try control.command("rollout start shop canary --preset linear-10-1m --max-error-rate 0.01")
        XCTAssertEqual(s["weight"] as? Int, 10)
        XCTAssertNotNil(s["version"] as? Int, "the snapshot version its first step committed: \(s)")
        XCTAssertEqual(try control.command("rollout start shop canary")["ok"] as? Bool, false, "one rollout per route")
        XCTAssertEqual(try control.command("rollout pause shop")["state"] as? String, "paused")
        XCTAssertEqual(try control.command("rollout resume shop")["state"] as? String, "running")
        let aborted = try control.command("rollout abort shop")
        XCTAssertEqual(aborted["state"] as? String, "aborted")
        XCTAssertEqual(aborted["weight"] as? Int, 0)
        XCTAssertEqual(try control.command("begin")["ok"] as? Bool, true)
        XCTAssertEqual(try control.command("rollout start shop canary")["ok"] as? Bool, false, "not inside a transaction")
        XCTAssertEqual(try control.command("abort")["ok"] as? Bool, true)
        let promoted = try control.command("rollout start shop canary --preset all-at-once")
        XCTAssertEqual(promoted["weight"] as? Int, 100)
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.rollout(control))?["state"] as? String == "promoted" })
    }

    /// Fleet mode: the steps follow `startAt` and the gates read a Prometheus HTTP API (a fake
    /// one here, whose canary fails 20% of requests) rather than the local counters.
    /// A fake Prometheus HTTP API whose canary fails 20% of requests (the numbers grow with each
    /// query, so every step sees new requests).
    func startFakePrometheus() throws -> RawServer {
        let calls = Counter()
        return try startServer { conn, server in
            guard let head = conn.readHead() else { return }
            server.record(head)
            let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let query = (target.removingPercentEncoding ?? target)
            let n = Double(calls.next())
            let result: String
            if query.contains("le)") {
                result = "[]"
            } else {
                let value = query.contains("code=\"5xx\"") ? (query.contains("variant=\"canary\"") ? n * 20 : 0) : n * 100
                result = "[{\"metric\":{},\"value\":[\(Date().timeIntervalSince1970),\"\(value)\"]}]"
            }
            let body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":\(result)}}"
            _ = conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
    }

    func testPrometheusGateSourceRollsBackOnTheFleetsNumbers() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let prometheus = try startFakePrometheus()
        let formatter = ISO8601DateFormatter()
        let startAt = formatter.string(from: Date(timeIntervalSinceNow: -1))
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 2, "startAt": "\(startAt)",
              "gates": { "maxErrorRate": 0.05, "minRequests": 10 },
              "gateSource": { "prometheus": "http://127.0.0.1:\(prometheus.port)" } }
            """)
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        // No request goes through the proxy: the numbers are the fleet's, from Prometheus.
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.05) { (try? self.rollout(control))?["state"] as? String == "rolled_back" })
        let r = try rollout(control)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("maxErrorRate 0.2 > 0.05"), "\(r)")
        XCTAssertEqual(r["gateSource"] as? String, "http://127.0.0.1:\(prometheus.port)")
        XCTAssertTrue(prometheus.recordedHeads.contains { $0.hasPrefix("GET /api/v1/query?query=") }, "\(prometheus.recordedHeads.prefix(2))")
        XCTAssertEqual(try servedByName(proxy), "stable")
    }

    /// The fake Prometheus behind a TLS listener (a Switchyard terminating TLS with a certificate
    /// for "localhost" from `pki`).
    func startTLSPrometheus(_ pki: TestPKI) throws -> RunningProxy {
        let prometheus = try startFakePrometheus()
        let cert = try pki.issue("prometheus", names: ["localhost"])
        return try startProxy(json: """
        { "workers": 1,
          "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificates": [ { "cert": "\(cert.cert)", "key": "\(cert.key)" } ] } } ],
          "upstreams": { "prometheus": { "endpoints": ["127.0.0.1:\(prometheus.port)"] } },
          "routes": [ { "name": "default", "upstream": "prometheus" } ] }
        """)
    }

    func rolloutReadingPrometheus(_ url: String, caFile: String, stable: UInt16, canary: UInt16) throws -> String {
        let startAt = ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: -1))
        return try rolloutConfig(stable: stable, canary: canary, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 2, "startAt": "\(startAt)",
              "gates": { "maxErrorRate": 0.05, "minRequests": 10 },
              "gateSource": { "prometheus": "\(url)", "caFile": "\(caFile)" } }
            """)
    }

    /// Prometheus over TLS: verified against the gate source's CA file and the URL's host name.
    func testPrometheusOverTLSIsReadWithItsCAFile() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let pki = try TestPKI(directory: try temporaryDirectory())
        let front = try startTLSPrometheus(pki)
        let json = try rolloutReadingPrometheus("https://localhost:\(front.port)", caFile: pki.caCert, stable: stable.port, canary: canary.port)
        _ = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.05) { (try? self.rollout(control))?["state"] as? String == "rolled_back" })
        let r = try rollout(control)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("maxErrorRate 0.2 > 0.05"), "\(r)")
    }

    /// A Prometheus whose certificate the CA file did not sign is not read: no step is judged
    /// on its numbers, and the log says why.
    func testPrometheusOverTLSWithTheWrongCAIsRefused() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startCanary(failEvery: 0)
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let otherDir = dir + "/other"
        try FileManager.default.createDirectory(atPath: otherDir, withIntermediateDirectories: true)
        let other = try TestPKI(directory: otherDir)
        let front = try startTLSPrometheus(pki)
        let json = try rolloutReadingPrometheus("https://localhost:\(front.port)", caFile: other.caCert, stable: stable.port, canary: canary.port)
        let proxy = try startProxy(json: json)
        let line = proxy.process.waitForStderrLine(containing: "TLS handshake with localhost:\(front.port) failed", timeout: 20)
        XCTAssertNotNil(line)
        XCTAssertTrue(line?.contains("certificate verify failed") ?? false, line ?? "")
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertNotEqual(try rollout(control)["state"] as? String, "rolled_back")
    }

    func servedByName(_ proxy: RunningProxy) throws -> String? {
        try connect(proxy).exchange(get("/")).header("X-Name")
    }
}
