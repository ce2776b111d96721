// One driver per fleet: a clock-stepped rollout is stepped by the instance that holds the
// driver key, once, not once per instance; killed mid-rollout, another instance takes the key
// when the driver's lease runs out and goes on at the saved step.
import Foundation
import Glibc
import TestSupport
import XCTest

final class EtcdFleetDriverTests: EndToEndTestCase {
    private func showFleet(_ m: FleetMember) throws -> [String: Any] {
        let r = try ctl(m, ["--json", "show", "fleet"])
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    private func rollout(_ m: FleetMember) throws -> [String: Any] {
        let r = try ctl(m, ["--json", "show", "rollout", "api"])
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    func testTheDriverDiesAndAnotherGoesOnAtTheSavedStep() throws {
        let (fleet, _, _) = try startFleet(3, etcd: try etcd())
        var driverName: String?
        XCTAssertTrue(waitUntil(timeout: 10) { driverName = (try? self.showFleet(fleet.members[0]))?["driver"] as? String; return driverName != nil })
        let others = fleet.members.filter { $0.name != driverName }
        XCTAssertEqual(others.count, 2, "one driver among \(fleet.members.map(\.name)): \(driverName ?? "none")")
        // Traffic through the instances that live on (the driver's counters judge its steps
        // until it dies, theirs after).
        let load = BackgroundLoad(ports: fleet.members.map(\.proxy.port), connectionsPerPort: 1)
        XCTAssertTrue(load.waitForProgress())
        // Started on an instance that does not drive: its status goes to etcd, the driver steps it.
        let start = try ctl(others[0], ["rollout", "start", "api", "canary", "--steps", "10,50,100", "--step-seconds", "2",
                                        "--min-requests", "1", "--max-step-seconds", "600"])
        XCTAssertEqual(start.termination, .exited(0), start.stdout + start.stderr)
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.05) { (try? self.rollout(others[1]))?["step"] as? Int == 2 },
                      "\((try? rollout(others[1])) ?? [:])")
        let driver = fleet.members.first { $0.name == driverName }!
        let before = load.stop()
        XCTAssertEqual(before.failures, [])
        let survivors = BackgroundLoad(ports: others.map(\.proxy.port), connectionsPerPort: 1)
        driver.proxy.process.kill()
        XCTAssertTrue(waitUntil(timeout: 30, interval: 0.05) { (try? self.rollout(others[1]))?["state"] as? String == "promoted" },
                      "\((try? rollout(others[1])) ?? [:])")
        let r = try rollout(others[1])
        let events = (r["history"] as? [[String: Any]] ?? []).map { $0["event"] as? String ?? $0["kind"] as? String ?? "?" }
        XCTAssertEqual(events.filter { $0 == "start" }.count, 1, "never started over: \(events)")
        XCTAssertEqual(events.filter { $0 == "step" }.count, 3, "each step once: \(events)")
        let newDriver = try showFleet(others[1])["driver"] as? String
        XCTAssertTrue(others.map(\.name).contains(newDriver ?? ""), "a survivor drives now: \(newDriver ?? "none")")
        XCTAssertEqual(survivors.stop().failures, [])
    }

    /// Without Prometheus the driver judges the sum of every instance's counters: traffic that
    /// reaches only another instance still moves the steps.
    func testGatesReadTheWholeFleetsCounters() throws {
        let (fleet, _, _) = try startFleet(2, etcd: try etcd())
        var driverName: String?
        XCTAssertTrue(waitUntil(timeout: 10) { driverName = (try? self.showFleet(fleet.members[0]))?["driver"] as? String; return driverName != nil })
        let other = fleet.members.first { $0.name != driverName }!
        let load = BackgroundLoad(ports: [other.proxy.port], connectionsPerPort: 1)
        XCTAssertTrue(load.waitForProgress())
        let start = try ctl(other, ["rollout", "start", "api", "canary", "--steps", "10,100", "--step-seconds", "1",
                                    "--min-requests", "5", "--max-step-seconds", "600"])
        XCTAssertEqual(start.termination, .exited(0), start.stdout + start.stderr)
        XCTAssertTrue(waitUntil(timeout: 30, interval: 0.05) { (try? self.rollout(other))?["state"] as? String == "promoted" },
                      "\((try? rollout(other)) ?? [:])")
        XCTAssertEqual(load.stop().failures, [])
    }

    /// A guarded change made on one instance is baked by the driver on the fleet's counters:
    /// the failing canary's traffic reaches only the driver, and the change is reverted on
    /// every instance.
    func testTheDriverBakesAGuardMadeElsewhere() throws {
        let (fleet, _, _) = try startFleet(2, etcd: try etcd(), canaryEndpoint: try refusingEndpoint())
        var driverName: String?
        XCTAssertTrue(waitUntil(timeout: 10) { driverName = (try? self.showFleet(fleet.members[0]))?["driver"] as? String; return driverName != nil })
        let driver = fleet.members.first { $0.name == driverName }!
        let other = fleet.members.first { $0.name != driverName }!
        let change = try ctl(other, ["--json", "set", "weights", "api", "stable=0", "canary=100", "--bake", "60",
                                     "--revert-if-error-rate", "0.2", "--min-requests", "5"])
        XCTAssertEqual(change.termination, .exited(0), change.stdout + change.stderr)
        XCTAssertTrue(change.stdout.contains("\"guard\""), change.stdout)
        // Traffic through the driver only: the instance that made the change sees none.
        let reverted = waitUntil(timeout: 30, interval: 0.02) {
            _ = try? self.served(driver, "/")
            return (try? self.served(other, "/")) == "blue" && (try? self.served(driver, "/")) == "blue"
        }
        XCTAssertTrue(reverted, "the change was not reverted: \((try? self.ctl(other, ["show", "guards"]).stdout) ?? "")")
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.ctl(other, ["--json", "show", "guards"]).stdout)?.contains("\"reverted\"") == true },
                      (try? ctl(other, ["--json", "show", "guards"]).stdout) ?? "")
        for m in fleet.members { XCTAssertNil(m.proxy.process.poll(), "\(m.name) is still running: \(m.proxy.process.stderr)") }
    }
}
