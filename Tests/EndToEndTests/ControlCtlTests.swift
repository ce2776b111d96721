// The real binary's control socket: `switchyard ctl` output and exit codes, restart, reload by
// command and SIGHUP (an invalid one refused while traffic continues), tunnels, the demo.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ControlCtlTests: EndToEndTestCase {
    private var blue: EchoUpstream!
    private var green: EchoUpstream!
    private var canary: EchoUpstream!

    override func setUpWithError() throws {
        try super.setUpWithError()
        blue = try startEcho(name: "blue")
        green = try startEcho(name: "green")
        canary = try startEcho(name: "canary")
    }

    private func startControlled(live: String = "blue") throws -> RunningProxy {
        let proxy = try startProxy(json: try controlConfig(blue: blue, green: green, canary: canary, live: live))
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "control socket "), proxy.process.stderr)
        return proxy
    }

    func testCtlFlipPrintsATableAndJSONAndTheFlipTakesEffect() throws {
        let proxy = try startControlled()
        XCTAssertEqual(try servedBy(proxy), "blue")
        let flip = try ctl(["flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stderr)
        XCTAssertTrue(flip.stdout.contains("live: green"), flip.stdout)
        XCTAssertTrue(flip.stdout.contains("previous: blue"), flip.stdout)
        XCTAssertEqual(try servedBy(proxy), "green")

        let shown = try ctl(["show", "upstreams"])
        XCTAssertEqual(shown.termination, .exited(0))
        XCTAssertTrue(shown.stdout.contains("UPSTREAM"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("checkout  blue/green  green"), shown.stdout)

        let json = try ctl(["--json", "show", "state"])
        let reply = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(reply?["ok"] as? Bool, true)
        let overrides = reply?["overrides"] as? [[String: Any]]
        XCTAssertEqual(overrides?.first?["value"] as? String, "green")
        XCTAssertEqual(overrides?.first?["config"] as? String, "blue")
    }

    func testCtlErrorsExitOne() throws {
        _ = try startControlled()
        let typo = try ctl(["flp", "checkout"])
        XCTAssertEqual(typo.termination, .exited(1))
        XCTAssertTrue(typo.stdout.contains(#"error: unknown command "flp" (did you mean "flip"?)"#), typo.stdout)
        let json = try ctl(["--json", "set", "weights", "shop", "stabel=1"])
        XCTAssertEqual(json.termination, .exited(1))
        XCTAssertTrue(json.stdout.hasPrefix(#"{"ok":false,"error":"route \"shop\" has no variant \"stabel\" (did you mean \"stable\"?)"#),
                      json.stdout)

        let missing = try ChildProcess.run(switchyard: ["ctl", "--socket", try temporaryDirectory() + "/nobody.sock", "help"])
        XCTAssertEqual(missing.termination, .exited(1))
        XCTAssertTrue(missing.stderr.contains("no control socket at"), missing.stderr)
    }

    func testCtlRunsATransactionOnOneConnection() throws {
        let proxy = try startControlled()
        let run = try ctl(["begin", ";", "flip", "checkout", ";", "set", "weights", "shop", "stable=50", "canary=50", ";", "commit"])
        XCTAssertEqual(run.termination, .exited(0), run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.contains("committed: 2"), run.stdout)
        XCTAssertEqual(try servedBy(proxy, ["X-Switchyard-Variant: stable"]), "green")

        let config = try ChildProcess.run(switchyard: ["ctl", "--config", proxy.configPath, "show", "routes"])
        XCTAssertEqual(config.termination, .exited(0), config.stderr)
        XCTAssertTrue(config.stdout.contains("stable   checkout  50"), config.stdout)
    }

    func testLiveColorSurvivesARestart() throws {
        let first = try startControlled()
        XCTAssertEqual(try ctl(["flip", "checkout"]).termination, .exited(0))
        first.process.send(signal: SIGTERM)
        XCTAssertEqual(first.process.waitForExit(), .exited(0))
        XCTAssertFalse(FileManager.default.fileExists(atPath: try controlSocket()), "the socket is removed at exit")

        let second = try startControlled()
        XCTAssertTrue(second.process.stderr.contains("applied runtime overrides"), second.process.stderr)
        XCTAssertEqual(try servedBy(second), "green")
        let state = try ctl(["show", "state"])
        XCTAssertTrue(state.stdout.contains("checkout  live     green  blue"), state.stdout)
    }

    func testASecondInstanceOnALiveSocketFailsToStart() throws {
        let proxy = try startControlled()
        let p = adopt(try ChildProcess(switchyard: ["run", "--config", proxy.configPath]))
        XCTAssertEqual(p.waitForExit(), .exited(1))
        XCTAssertTrue(p.stderr.contains("another Switchyard is serving the control socket"), p.stderr)
        XCTAssertEqual(try servedBy(proxy), "blue", "the first keeps serving")
    }

    func testSighupReloadsAndAnInvalidFileIsRefusedWhileTrafficContinues() throws {
        let proxy = try startControlled()
        // The file now sends everything to canary.
        try Data(try controlConfig(blue: blue, green: green, canary: canary, stable: 0, canaryWeight: 100).utf8)
            .write(to: URL(fileURLWithPath: proxy.configPath))
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded \(proxy.configPath): version 2"), proxy.process.stderr)
        XCTAssertEqual(try servedBy(proxy), "canary")

        let client = try connect(proxy)
        try Data(#"{ "listeners": [], "upstreams": {}, "routes": [], "extra": 1 }"#.utf8).write(to: URL(fileURLWithPath: proxy.configPath))
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reload refused, the running config is unchanged"),
                        proxy.process.stderr)
        for _ in 0..<5 { XCTAssertEqual(try client.exchange(get("/")).header("X-Echo-Name"), "canary") }

        let reload = try ctl(["reload"])
        XCTAssertEqual(reload.termination, .exited(1))
        XCTAssertTrue(reload.stdout.contains("error: reload refused"), reload.stdout)
        XCTAssertTrue(reload.stdout.contains("\(proxy.configPath):1: extra: unknown key"), "each error with its key: \(reload.stdout)")
        XCTAssertEqual(try servedBy(proxy), "canary")
    }

    func testAWebSocketTunnelStaysOnTheColorItStartedOn() throws {
        let proxy = try startControlled()
        let tunnel = try connect(proxy)
        try tunnel.send("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        let r = try tunnel.readResponse()
        XCTAssertEqual(r.status, 101)
        XCTAssertEqual(r.header("X-Echo-Name"), "blue")
        XCTAssertEqual(try ctl(["flip", "checkout"]).termination, .exited(0))
        XCTAssertEqual(try servedBy(proxy), "green", "new requests go to green")
        for message in ["after the flip", String(repeating: "z", count: 50_000)] {
            try tunnel.send(message)
            XCTAssertEqual(String(decoding: try tunnel.read(count: message.utf8.count), as: UTF8.self), message,
                           "the tunnel to blue carries on")
        }
        tunnel.shutdownWrite()
        XCTAssertEqual(tunnel.waitForClose(), .closed(extraBytes: 0))
    }

    func testDemoPrintsACtlLineThatFlips() throws {
        let (fd, port) = try Sockets.bound(listen: false)
        Glibc.close(fd)
        let demo = adopt(try ChildProcess(switchyard: ["demo", "--port", String(port)]))
        let printed = demo.waitForStdoutLine { $0.contains(" ctl --socket") && $0.contains("flip checkout") }
        guard let line = printed?.trimmingCharacters(in: .whitespaces) else {
            return XCTFail("no ctl line in the demo's output: \(demo.stdout)")
        }
        // Run exactly as printed: the first word is the binary's own path, not a bare
        // `switchyard` that a shell may not find.
        let words = line.split(separator: " ").map(String.init)
        XCTAssertEqual(Array(words.dropFirst(4)), ["flip", "checkout"])
        XCTAssertTrue(words[0].hasPrefix("/") && FileManager.default.isExecutableFile(atPath: words[0]), words[0])
        let socket = words[3]
        XCTAssertTrue(socket.hasPrefix("/tmp/switchyard-demo-"), socket)
        let flip = ChildProcess.runToEnd(try ChildProcess(executable: words[0], arguments: Array(words.dropFirst())))
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("live: green"), flip.stdout)
        demo.send(signal: SIGTERM)
        XCTAssertEqual(demo.waitForExit(), .exited(0))
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the demo removes its socket at exit")
    }

    /// The demo's rollout is judged on traffic the demo tells how to send: run the printed
    /// traffic line and the printed `rollout start` as they are, and the canary is promoted;
    /// the mirror compares, so `show shadow` has comparisons.
    func testDemoRolloutPromotesOnThePrintedTraffic() throws {
        let (fd, port) = try Sockets.bound(listen: false)
        Glibc.close(fd)
        let demo = adopt(try ChildProcess(switchyard: ["demo", "--port", String(port)]))
        XCTAssertNotNil(demo.waitForStdoutLine { $0.contains("Ctrl-C to stop") }, demo.stdout)
        let lines = demo.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let traffic = try XCTUnwrap(lines.first { $0.hasPrefix("while curl") }, demo.stdout)
        let start = try XCTUnwrap(lines.first { $0.contains(" ctl --socket") && $0.contains("rollout start") }, demo.stdout)
        let words = start.split(separator: " ").map(String.init)
        let (binary, socket) = (words[0], words[3])

        let sender = adopt(try ChildProcess(executable: "/bin/sh", arguments: ["-c", traffic]))
        let started = try ChildProcess.run(executable: binary, arguments: Array(words.dropFirst()))
        XCTAssertEqual(started.termination, .exited(0), started.stdout + started.stderr)
        var rollout: [String: Any] = [:]
        let promoted = try waitUntil(timeout: 120, interval: 0.5) {
            let shown = try ChildProcess.run(executable: binary, arguments: ["ctl", "--socket", socket, "--json", "show", "rollout", "shop"])
            rollout = (try? JSONSerialization.jsonObject(with: Data(shown.stdout.utf8))) as? [String: Any] ?? [:]
            return ["promoted", "rolled_back", "rolledBack", "aborted"].contains(rollout["state"] as? String ?? "")
        }
        XCTAssertTrue(promoted, "\(rollout)")
        XCTAssertEqual(rollout["state"] as? String, "promoted", "\(rollout)")

        let shadow = try ChildProcess.run(executable: binary, arguments: ["ctl", "--socket", socket, "--json", "show", "shadow"])
        let reply = (try? JSONSerialization.jsonObject(with: Data(shadow.stdout.utf8))) as? [String: Any] ?? [:]
        let compared = ((reply["shadows"] as? [[String: Any]])?.first?["compared"] as? Int) ?? 0
        XCTAssertGreaterThan(compared, 0, shadow.stdout)
        demo.send(signal: SIGTERM)
        XCTAssertEqual(demo.waitForExit(), .exited(0))
        XCTAssertNotNil(sender.waitForExit(timeout: 10), "the traffic loop ends with the demo")
    }
}
