// Fleet mode against a real etcd: instances that share their runtime state through it. A change
// made on any instance's control socket is one etcd transaction that every instance applies as
// one snapshot swap; with etcd away the instances keep serving and refuse writes; a restarted
// instance starts at the current revision; a leader killed mid-stream loses no request.
import Foundation
import Glibc
import TestSupport
import XCTest

final class EtcdFleetTests: EndToEndTestCase {
    func testAFlipOnOneInstanceReachesEveryInstance() throws {
        let (fleet, _, _) = try startFleet(5, etcd: try etcd())
        for m in fleet.members { XCTAssertEqual(try served(m, "/shop"), "blue") }
        let flip = try ctl(fleet.members[1], ["--wait=10", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("applied on all 5 instances"), flip.stdout)
        // --wait returned: every instance serves the new color now, without waiting here.
        for m in fleet.members { XCTAssertEqual(try served(m, "/shop"), "green", m.name) }
        let show = try ctl(fleet.members[0], ["--json", "show", "fleet"])
        XCTAssertEqual(show.termination, .exited(0), show.stdout + show.stderr)
        for m in fleet.members { XCTAssertTrue(show.stdout.contains("\"name\":\"\(m.name)\""), show.stdout) }
        XCTAssertTrue(show.stdout.contains("\"storeUp\":true"), show.stdout)
        XCTAssertTrue(show.stdout.contains("\"stragglers\":[]"), show.stdout)
    }

    /// A transaction of a weight change and two endpoint edits is one revision: an instance
    /// serves the route before it (blue) or after it (yellow), never the half that moves the
    /// weight to canary's old endpoint (green).
    func testATransactionIsSeenWholeOnEveryInstance() throws {
        let (fleet, _, green) = try startFleet(3, etcd: try etcd())
        let yellow = try startEcho(name: "yellow")
        let seen = Locked<Set<String>>([])
        let running = Locked(true)
        let group = DispatchGroup()
        for port in fleet.members.map(\.proxy.port) {
            group.enter()
            Thread {
                defer { group.leave() }
                while running.value {
                    guard let r = try? RawClient(port: port, timeout: 5).exchange(get("/")) else { continue }
                    seen.mutate { $0.insert(r.status == 200 ? r.header("X-Echo-Name") ?? "?" : "status \(r.status)") }
                }
            }.start()
        }
        let forward = ["begin", ";", "set", "weights", "api", "stable=0", "canary=100", ";", "endpoint", "add", "canary", yellow.endpoint,
                       ";", "endpoint", "remove", "canary", green.endpoint, ";", "commit"]
        let back = ["begin", ";", "set", "weights", "api", "stable=100", "canary=0", ";", "endpoint", "add", "canary", green.endpoint,
                    ";", "endpoint", "remove", "canary", yellow.endpoint, ";", "commit"]
        for round in 0..<4 {
            let r = try ctl(fleet.members[round % 3], ["--wait=10"] + (round % 2 == 0 ? forward : back))
            XCTAssertEqual(r.termination, .exited(0), r.stdout + r.stderr)
        }
        running.value = false
        group.wait()
        XCTAssertTrue(seen.value.contains("blue") && seen.value.contains("yellow"), "\(seen.value)")
        XCTAssertFalse(seen.value.contains("green"), "half of a transaction was served: \(seen.value)")
    }

    func testEtcdAwayKeepsServingRefusesWritesThenConverges() throws {
        let cluster = try etcd()
        let (fleet, _, _) = try startFleet(2, etcd: cluster, admin: true)
        XCTAssertEqual(try ctl(fleet.members[0], ["--wait", "set", "weights", "api", "stable=0", "canary=100"]).termination, .exited(0))
        cluster.kill(cluster.members[0])
        let admin = try adminPort(fleet.members[1].proxy)
        try waitForMetrics(adminPort: admin, timeout: 15) { $0["switchyard_fleet_store_up"] == 0 }
        // Still serving the last applied state, and ready.
        for m in fleet.members { XCTAssertEqual(try served(m, "/"), "green") }
        let refused = try ctl(fleet.members[0], ["flip", "checkout"])
        XCTAssertEqual(refused.termination, .exited(1))
        XCTAssertTrue(refused.stdout.contains("etcd cannot be written"), refused.stdout)
        let show = try ctl(fleet.members[1], ["--json", "show", "fleet"])
        XCTAssertTrue(show.stdout.contains("\"storeUp\":false") && show.stdout.contains("\"unreachableSince\""), show.stdout)
        XCTAssertEqual(try served(fleet.members[0], "/shop"), "blue", "the refused flip changed nothing")
        try cluster.start(cluster.members[0])
        try cluster.waitHealthy(cluster.members)
        try waitForMetrics(adminPort: admin, timeout: 20) { $0["switchyard_fleet_store_up"] == 1 }
        let flip = try ctl(fleet.members[0], ["--wait=15", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        for m in fleet.members { XCTAssertEqual(try served(m, "/shop"), "green", m.name) }
        XCTAssertGreaterThan(try metrics(adminPort: admin)["switchyard_fleet_applied_revision"], 0)
    }

    func testARestartedInstanceStartsAtTheCurrentRevision() throws {
        let cluster = try etcd()
        let (fleet, blue, green) = try startFleet(2, etcd: cluster)
        fleet.members[1].proxy.process.kill()
        XCTAssertEqual(try ctl(fleet.members[0], ["flip", "checkout"]).termination, .exited(0))
        XCTAssertEqual(try ctl(fleet.members[0], ["set", "weights", "api", "stable=0", "canary=100"]).termination, .exited(0))
        let socket = try temporaryDirectory() + "/again.sock"
        let again = FleetMember(proxy: try startProxy(json: fleetConfig(name: "i1", socket: socket, blue: blue, green: green, etcd: cluster)),
                           socket: socket, name: "i1")
        // Its first requests already see what changed while it was away.
        XCTAssertEqual(try served(again, "/shop"), "green")
        XCTAssertEqual(try served(again, "/"), "green")
    }

    func testKillingTheLeaderDuringFlipsLosesNoRequest() throws {
        let cluster = try etcd(size: 3)
        let (fleet, _, _) = try startFleet(3, etcd: cluster)
        let load = BackgroundLoad(ports: fleet.members.map(\.proxy.port), connectionsPerPort: 1)
        XCTAssertTrue(load.waitForProgress())
        var committed = 0
        for round in 0..<8 {
            if round == 3, let leader = cluster.leader() { cluster.kill(leader) }
            // A write during the election may be refused; it goes again once a leader answers.
            let ok = waitUntil(timeout: 20, interval: 0.05) {
                (try? self.ctl(fleet.members[round % 3], ["--wait=10", "flip", "checkout"]))?.termination == .exited(0)
            }
            XCTAssertTrue(ok, "flip \(round) never committed")
            if ok { committed += 1 }
        }
        XCTAssertTrue(load.waitForProgress())
        let traffic = load.stop()
        XCTAssertEqual(traffic.failures, [])
        XCTAssertEqual(committed, 8)
        for m in fleet.members { XCTAssertEqual(try served(m, "/shop"), "blue", "eight flips: back to blue") }
    }

    /// `ctl --etcd`: no socket; the change is checked against the instances' config and
    /// written to etcd; a change the config refuses is never written.
    func testCtlWritesThroughEtcdWithoutASocket() throws {
        let cluster = try etcd()
        let (fleet, _, _) = try startFleet(2, etcd: cluster)
        let config = try writeFile("ctl-config.json", fleet.configs[0])
        let base = ["ctl", "--etcd", cluster.clientURLs.joined(separator: ","), "--prefix", "/sy/test/", "--config", config]
        let flip = try ChildProcess.run(switchyard: base + ["--wait=10", "flip", "checkout", "--no-warmup"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("applied on all 2 instances"), flip.stdout)
        for m in fleet.members { XCTAssertEqual(try served(m, "/shop"), "green", m.name) }
        let bad = try ChildProcess.run(switchyard: base + ["set", "weights", "api", "nosuch=5"])
        XCTAssertEqual(bad.termination, .exited(1), bad.stdout + bad.stderr)
        XCTAssertTrue(bad.stdout.contains("nosuch"), bad.stdout)
        let show = try ChildProcess.run(switchyard: base + ["--json", "show", "routes"])
        XCTAssertTrue(show.stdout.contains("\"weight\":100"), "the refused change was not written: \(show.stdout)")
        let unreachable = try ChildProcess.run(switchyard: ["ctl", "--etcd", "http://127.0.0.1:1", "--prefix", "/sy/test/", "--config", config,
                                                            "flip", "checkout"])
        XCTAssertEqual(unreachable.termination, .exited(1))
        XCTAssertTrue(unreachable.stderr.contains("did not answer; nothing changed"), unreachable.stderr)
    }

    /// `--wait` names an instance that has not applied the change when the time is up, and
    /// `show fleet` marks it a straggler; it catches up once it runs again.
    func testWaitNamesAnInstanceThatHasNotAppliedAndItIsAStraggler() throws {
        // A straggler after 0.5 s, well before its 10 s lease runs out and it leaves the list.
        let (fleet, _, _) = try startFleet(3, etcd: try etcd(), fleetExtra: #", "leaseSeconds": 10, "stragglerMs": 500"#)
        // Every instance has joined (its membership key is written soon after it listens).
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.05) {
            let show = (try? self.ctl(fleet.members[0], ["--json", "show", "fleet"]).stdout) ?? ""
            return fleet.members.allSatisfy { show.contains("\"name\":\"\($0.name)\"") }
        })
        let stuck = fleet.members[2]
        stuck.proxy.process.send(signal: SIGSTOP)
        defer { stuck.proxy.process.send(signal: SIGCONT) }
        let flip = try ctl(fleet.members[0], ["--wait=1", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(1), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("not applied after") && flip.stdout.contains(stuck.name), flip.stdout)
        XCTAssertFalse(flip.stdout.contains(fleet.members[1].name + ","), "only the stopped instance is named: \(flip.stdout)")
        // Behind the change for longer than stragglerMs.
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.1) {
            (try? self.ctl(fleet.members[1], ["--json", "show", "fleet"]).stdout)?.contains("\"stragglers\":[\"\(stuck.name)\"]") == true
        }, (try? ctl(fleet.members[1], ["--json", "show", "fleet"]).stdout) ?? "")
        stuck.proxy.process.send(signal: SIGCONT)
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.served(stuck, "/shop")) == "green" }, "the stopped instance catches up")
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.1) {
            (try? self.ctl(fleet.members[1], ["--json", "show", "fleet"]).stdout)?.contains("\"stragglers\":[]") == true
        })
    }
}
