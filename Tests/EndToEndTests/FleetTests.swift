// `switchyard ctl --socket A --socket B --socket C COMMAND`: one change on three instances, all
// or nothing, under load. When every instance stages it, every instance commits and serves the
// new color; when one refuses, every instance aborts and none changes.
import Foundation
import Glibc
import XCTest

final class FleetTests: EndToEndTestCase {
    private struct Fleet {
        var proxies: [RunningProxy]
        var sockets: [String]
    }

    /// Three instances in front of the same blue and green; `plain` makes the third one's
    /// checkout a plain pool, so a flip is refused there.
    private func startFleet(thirdIsPlain plain: Bool = false) throws -> Fleet {
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let dir = try temporaryDirectory()
        var fleet = Fleet(proxies: [], sockets: [])
        for name in ["a", "b", "c"] {
            let socket = "\(dir)/\(name).sock"
            let checkout = plain && name == "c"
                ? pool(blue.endpoint)
                : #"{ "blue": \#(pool(blue.endpoint)), "green": \#(pool(green.endpoint)), "live": "blue" }"#
            let text = routingConfig(upstreams: [("checkout", checkout)], routes: [#"{ "name": "shop", "upstream": "checkout" }"#],
                                     controlSocket: socket)
            fleet.proxies.append(try startProxy(json: text))
            fleet.sockets.append(socket)
        }
        return fleet
    }

    private func fleetCtl(_ fleet: Fleet, _ command: [String]) throws -> (termination: Termination, stdout: String, stderr: String) {
        try ChildProcess.run(switchyard: ["ctl"] + fleet.sockets.flatMap { ["--socket", $0] } + command)
    }

    func testAFlipCommitsOnEveryInstanceUnderLoad() throws {
        let fleet = try startFleet()
        let load = BackgroundLoad(ports: fleet.proxies.map(\.port), connectionsPerPort: 1)
        XCTAssertTrue(load.waitForProgress())
        let result = try fleetCtl(fleet, ["flip", "checkout"])
        XCTAssertEqual(result.termination, .exited(0), result.stdout + result.stderr)
        for socket in fleet.sockets {
            XCTAssertTrue(result.stdout.contains("\(socket): committed, version"), result.stdout)
        }
        XCTAssertTrue(result.stdout.contains("committed on all 3 instances"), result.stdout)
        for proxy in fleet.proxies { XCTAssertEqual(try servedBy(proxy), "green") }
        XCTAssertTrue(load.waitForProgress())
        let traffic = load.stop()
        XCTAssertEqual(traffic.failures, [])
    }

    func testOneRefusingInstanceLeavesEveryInstanceUnchanged() throws {
        let fleet = try startFleet(thirdIsPlain: true)
        let load = BackgroundLoad(ports: fleet.proxies.map(\.port), connectionsPerPort: 1)
        XCTAssertTrue(load.waitForProgress())
        let result = try fleetCtl(fleet, ["--json", "flip", "checkout"])
        XCTAssertEqual(result.termination, .exited(1), result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertEqual(lines.count, 4, result.stdout)
        XCTAssertEqual(lines.prefix(3).map { $0["result"] as? String }, ["aborted", "aborted", "refused"], result.stdout)
        XCTAssertTrue((lines[2]["reason"] as? String ?? "").contains("blue/green"), result.stdout)
        XCTAssertEqual(lines[3]["ok"] as? Bool, false)
        for proxy in fleet.proxies { XCTAssertEqual(try servedBy(proxy), "blue", "nothing changed anywhere") }
        // No transaction was left open: a later change on the first instance commits at once.
        let later = try ChildProcess.run(switchyard: ["ctl", "--socket", fleet.sockets[0], "flip", "checkout"])
        XCTAssertEqual(later.termination, .exited(0), later.stdout)
        XCTAssertEqual(try servedBy(fleet.proxies[0]), "green")
        XCTAssertEqual(load.stop().failures, [])
    }

    func testAnUnreachableInstanceStopsTheChangeBeforeItStarts() throws {
        var fleet = try startFleet()
        fleet.sockets[1] = try temporaryDirectory() + "/nobody.sock"
        let result = try fleetCtl(fleet, ["flip", "checkout"])
        XCTAssertEqual(result.termination, .exited(1))
        XCTAssertTrue(result.stdout.contains("\(fleet.sockets[1]): unreachable"), result.stdout)
        XCTAssertTrue(result.stdout.contains("nothing changed"), result.stdout)
        for proxy in fleet.proxies { XCTAssertEqual(try servedBy(proxy), "blue") }
    }

    func testTransactionWordsAreRefusedAndShowRunsOnEach() throws {
        let fleet = try startFleet()
        let refused = try fleetCtl(fleet, ["begin", ";", "flip", "checkout", ";", "commit"])
        XCTAssertEqual(refused.termination, .exited(1))
        XCTAssertTrue(refused.stderr.contains("opens and commits the transaction on every instance itself"), refused.stderr)
        let show = try fleetCtl(fleet, ["show", "upstreams"])
        XCTAssertEqual(show.termination, .exited(0), show.stderr)
        for socket in fleet.sockets { XCTAssertTrue(show.stdout.contains("== \(socket)"), show.stdout) }
    }
}
