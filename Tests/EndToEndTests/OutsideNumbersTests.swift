// Numbers from outside the process never take the proxy down. A Prometheus that answers NaN,
// +Inf or 1e30 makes each gate reading invalid: logged, counted, the step holds, and after
// maxInvalidReadings in a row the rollout pauses; a restart reads the same answers and stays
// up. A control line with --min-requests 18446744073709551615 is refused and nothing is saved.
import Foundation
import Glibc
import TestSupport
import XCTest

final class OutsideNumbersTests: EndToEndTestCase {
    /// What the fake Prometheus answers: whole counts (all zero) until `invalid` is set, then
    /// NaN, +Inf and 1e30 in turn. Every query it is sent is kept.
    final class FakePrometheus: @unchecked Sendable {
        private let lock = NSLock()
        private var invalidAnswers = false
        private var served = 0
        private var queries: [String] = []

        var invalid: Bool {
            get { lock.withLock { invalidAnswers } }
            set { lock.withLock { invalidAnswers = newValue } }
        }
        var seen: [String] { lock.withLock { queries } }

        func value(for head: String) -> String {
            lock.withLock {
                queries.append(head)
                served += 1
                // One value per reading (three queries each), so that each is seen as the first refused.
                return invalidAnswers ? ["NaN", "+Inf", "1e30"][(served / 3) % 3] : "0"
            }
        }
    }

    private func startPrometheus(_ fake: FakePrometheus) throws -> RawServer {
        try startServer { conn, _ in
            guard let head = conn.readHead() else { return }
            let value = fake.value(for: head)
            let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let query = target.removingPercentEncoding ?? target
            let metric = query.contains("by (le)") ? #"{"le":"+Inf"}"# : "{}"
            let body = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":\#(metric),"value":[1700000000.5,"\#(value)"]}]}}"#
            _ = conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
    }


    private func rollout(_ control: ControlLineClient) throws -> [String: Any] {
        let r = try control.command("show rollout shop")
        XCTAssertEqual(r["ok"] as? Bool, true, "\(r)")
        return r
    }

    private func served(_ proxy: RunningProxy) throws -> String? {
        try connect(proxy).exchange(get("/")).header("X-Name")
    }

    func testPrometheusAnsweringNaNInfAnd1e30HoldsTheStepThenPausesTheRollout() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startSwitchable(Switchable(), name: "canary")
        let fake = FakePrometheus()
        let prometheus = try startPrometheus(fake)
        let token = try writeFile("prometheus-token", "t0ken-for-prometheus\n")
        chmod(token, 0o600)
        let json = try rolloutConfig(stable: stable.port, canary: canary.port, rollout: """
            { "variant": "canary", "steps": [10, 50, 100], "stepSeconds": 2, "maxStepSeconds": 600,
              "gates": { "maxErrorRate": 0.5 },
              "gateSource": { "prometheus": "http://127.0.0.1:\(prometheus.port)", "bearerTokenFile": "\(token)",
                              "maxInvalidReadings": 3 } }
            """)
        var proxy = try startProxy(json: json)
        var admin = try adminPort(proxy)
        var control = try ControlLineClient(path: try controlSocket())
        // Valid (zero) counts: the first step is taken; then every answer turns invalid.
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.02) { (try? self.rollout(control))?["weight"] as? Int == 10 })
        fake.invalid = true
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "invalid reading from Prometheus"), "logged")
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.02) { (try? self.rollout(control))?["state"] as? String == "paused" })
        let r = try rollout(control)
        XCTAssertEqual(r["step"] as? Int, 1, "the step held: \(r)")
        XCTAssertEqual(r["weight"] as? Int, 10)
        XCTAssertTrue((r["reason"] as? String ?? "").contains("3 invalid readings in a row from Prometheus"), "\(r)")
        XCTAssertTrue((r["reason"] as? String ?? "").contains("is not a count"), "\(r)")
        let history = r["history"] as? [[String: Any]] ?? []
        XCTAssertEqual(history.filter { $0["event"] as? String == "step" }.count, 1, "no step taken on invalid numbers: \(history)")
        XCTAssertFalse(history.contains { $0["event"] as? String == "rollback" || $0["event"] as? String == "promote" }, "\(history)")
        let m = try waitForMetrics(adminPort: admin) { $0["switchyard_rollout_state{route=\"shop\",state=\"paused\"}"] == 1 }
        XCTAssertGreaterThanOrEqual(m["switchyard_rollout_invalid_readings_total{route=\"shop\"}"] ?? 0, 3)
        XCTAssertEqual(m["switchyard_rollout_events_total{route=\"shop\",event=\"pause\"}"], 1)
        XCTAssertEqual(m["switchyard_route_weight{route=\"shop\",variant=\"canary\"}"], 10)
        // Each of the three values was refused by name.
        for shown in ["requests nan is not a count", "requests inf is not a count", "requests 1e+30 is not a count"] {
            XCTAssertNotNil(proxy.process.waitForStderrLine(containing: shown), shown)
        }
        // The queries select the proxy's own series and carry the token.
        let heads = fake.seen
        XCTAssertTrue(heads.allSatisfy { ($0.split(separator: " ").dropFirst().first.map(String.init)?.removingPercentEncoding ?? "")
            .contains(#"{job="switchyard",route="shop",variant="#) }, "\(heads.prefix(2))")
        XCTAssertTrue(heads.allSatisfy { $0.contains("\r\nAuthorization: Bearer t0ken-for-prometheus\r\n") }, "\(heads.prefix(1))")
        XCTAssertNil(proxy.process.poll(), "the proxy is up")
        XCTAssertTrue(["stable", "canary"].contains(try served(proxy) ?? ""))

        // Killed and started again on the same state file and the same answers: it stays up, paused.
        proxy.process.kill()
        let before = fake.seen.count
        proxy = try startProxy(json: json)
        admin = try adminPort(proxy)
        control = try ControlLineClient(path: try controlSocket())
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.02) { fake.seen.count >= before + 6 }, "queried again after the start")
        _ = try waitForMetrics(adminPort: admin) { ($0["switchyard_rollout_invalid_readings_total{route=\"shop\"}"] ?? 0) >= 1 }
        XCTAssertNil(proxy.process.poll(), "the restarted proxy is up")
        XCTAssertEqual(try rollout(control)["state"] as? String, "paused")
        XCTAssertNotNil(try served(proxy))
    }

    func testMinRequestsPastItsBoundIsRefusedAndTheProxyStaysUp() throws {
        let stable = try startSwitchable(Switchable(), name: "stable")
        let canary = try startSwitchable(Switchable(), name: "canary")
        let proxy = try startProxy(json: try rolloutConfig(stable: stable.port, canary: canary.port, rollout: nil))
        let control = try ControlLineClient(path: try controlSocket())
        let r = try control.command("set weights shop stable=90 canary=10 --bake 5 --revert-if-error-rate 0.5 --min-requests 18446744073709551615")
        XCTAssertEqual(r["ok"] as? Bool, false, "\(r)")
        XCTAssertTrue((r["error"] as? String ?? "").contains("--min-requests must be a whole number from 1 to 1000000000"), "\(r)")
        // Nothing was committed or saved, and the proxy answers both the socket and requests.
        let state = try control.command("show state")
        XCTAssertEqual(state["ok"] as? Bool, true, "\(state)")
        XCTAssertEqual((state["overrides"] as? [Any])?.count ?? 0, 0, "\(state)")
        XCTAssertEqual(try served(proxy), "stable")
        XCTAssertNil(proxy.process.poll(), "the proxy is up")
        let fine = try control.command("set weights shop stable=90 canary=10 --bake 5 --revert-if-error-rate 0.5 --min-requests 1000000000")
        XCTAssertEqual(fine["ok"] as? Bool, true, "the largest accepted value: \(fine)")
        XCTAssertEqual(((fine["guard"] as? [String: Any])?["limits"] as? [String: Any])?["minRequests"] as? Int, 1_000_000_000, "\(fine)")
        XCTAssertNil(proxy.process.poll(), "the proxy is up")
    }

    /// `switchyard echo` (the test upstream) refuses a delay it cannot sleep, with 400, and
    /// goes on answering: 4294968 ms overflowed UInt32 microseconds and trapped it.
    func testEchoRefusesADelayItCannotSleep() throws {
        let echo = try startEcho()
        var client = try RawClient(port: echo.port)
        for bad in ["4294968", "99999999999999999999", "-1", "60001"] {
            XCTAssertEqual(try client.exchange(get("/?delay=\(bad)")).status, 400, bad)
            client = try RawClient(port: echo.port)
        }
        XCTAssertEqual(try client.exchange(get("/?delay=1")).status, 200)
        XCTAssertNil(echo.process.poll(), "the echo upstream is up")
        let refused = try ChildProcess.run(switchyard: ["echo", "--listen", "127.0.0.1:0", "--delay-ms", "4294968"])
        XCTAssertTrue(refused.stderr.contains("--delay-ms must be a whole number of milliseconds from 0 to 60000"), refused.stderr)
    }
}
