// The control protocol over a real Unix socket: every command's reply, bad input of each kind
// (with "did you mean"), line limits, pipelining, several clients at once.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlProtocolTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    // MARK: framing

    func testLineFramerSplitsCRLFAndReportsLongLinesOnce() {
        var f = LineFramer(limit: 12)
        XCTAssertEqual(f.feed(Array("help\r\nshow ".utf8)), [.line("help")])
        XCTAssertEqual(f.feed(Array("routes\n".utf8)), [.line("show routes")])
        XCTAssertEqual(f.feed(Array("0123456789abc".utf8)), [])
        XCTAssertEqual(f.feed(Array("def\nflip x\n".utf8)), [.tooLong(bytes: 16), .line("flip x")])
        XCTAssertEqual(f.feed(Array("last".utf8)), [])
        XCTAssertEqual(f.finish(), .line("last"))
        XCTAssertNil(f.finish())
    }

    func testWordsKeepQuotedBlanks() {
        XCTAssertEqual(ControlProtocol.words("  set  weights\tshop a=1 "), ["set", "weights", "shop", "a=1"])
        XCTAssertEqual(ControlProtocol.words(#"reset "a b" 'c d'"#), ["reset", "a b", "c d"])
    }

    func testRepliesAreOneJSONObjectPerLine() {
        let v: ControlValue = ["ok": true, "s": "a\"b\nc", "n": 1.5, "i": 3, "a": [1, nil]]
        XCTAssertEqual(v.json, #"{"ok":true,"s":"a\"b\nc","n":1.5,"i":3,"a":[1,null]}"#)
        XCTAssertEqual(ControlValue(json: v.json), v)
    }

    func testNumbersAreAlwaysValidJSON() {
        // Warm-up latencies are measured doubles: some round to whole numbers at 3 decimals.
        // Below 0.001 three significant digits stay (a p-value of 2e-9 is not 0).
        let cases: [(Double, String)] = [(1.0004, "1"), (0.702, "0.702"), (2.5, "2.5"), (-0.0004, "-0.0004"),
                                         (3, "3"), (12.3456, "12.346"), (0.0005, "0.0005"), (2.345e-9, "2.35e-9"),
                                         (0.00012345, "0.000123"), (.nan, "null")]
        for (d, text) in cases {
            XCTAssertEqual(ControlValue.double(d).json, text, "\(d)")
            if d.isFinite { XCTAssertEqual(ControlValue(json: #"{"n":"# + text + "}")?["n"]?.double, Double(text), text) }
        }
    }

    func testRepliesRenderAsTablesForPeople() {
        let reply: ControlValue = [
            "ok": true, "version": 3,
            "endpoints": [["address": "127.0.0.1:1", "live": true, "inFlight": 12], ["address": "[::1]:80", "live": false, "inFlight": 0]],
            "warmup": ["latenciesMs": [1.5, 2], "failure": nil],
        ]
        XCTAssertEqual(ControlFormat.render(reply), """
            version: 3

            endpoints:
              ADDRESS      LIVE  INFLIGHT
              127.0.0.1:1  yes   12
              [::1]:80     no    0
            warmup:
              latenciesMs: 1.5, 2
              failure: -
            """)
        XCTAssertEqual(ControlFormat.render(ControlProtocol.failure("bad", details: ["errors": ["a", "b"]])),
                       "error: bad\nerrors: a, b")
    }

    // MARK: every command

    func testHelpListsEveryCommandFromTheTable() throws {
        let reply = expectOK(try fixture.command("help"))
        let usages = reply["commands"]?.array?.compactMap { $0["command"]?.string } ?? []
        XCTAssertEqual(usages.count, ControlEngine.table.count)
        for name in ["help", "show routes", "show upstreams", "show state", "show stats", "flip UPSTREAM", "set live",
                     "set weights", "set mirror", "endpoint add", "endpoint remove", "endpoint drain", "begin", "commit",
                     "abort", "reset NAME", "reload"] {
            XCTAssertTrue(usages.contains { $0.hasPrefix(name) }, "help lacks \(name)")
        }
        let one = expectOK(try fixture.command("help flip"))
        XCTAssertEqual(one["command"]?.string, "flip UPSTREAM [--no-warmup] " + GuardOptions.usage)
    }

    /// What a command does besides answering is a field of its table entry: the changes are
    /// staged in a transaction, the guarded ones take --bake and show it in their usage.
    func testCommandTableCarriesEachCommandsProperties() {
        let table = ControlEngine.table
        XCTAssertEqual(Set(table.filter(\.makesChange).map(\.name)),
                       ["flip", "set live", "set weights", "set mirror", "endpoint add", "endpoint remove", "endpoint drain", "reset"])
        XCTAssertEqual(Set(table.filter(\.acceptsGuard).map(\.name)),
                       ["flip", "set live", "set weights", "endpoint add", "endpoint remove", "endpoint drain", "begin", "commit"])
        for c in table { XCTAssertEqual(c.usage.hasSuffix(GuardOptions.usage), c.acceptsGuard, c.name) }
        XCTAssertEqual(table.first { $0.name == "begin" }?.usage, "begin " + GuardOptions.usage)
    }

    func testShowCommands() throws {
        let c = try fixture.client()
        let routes = expectOK(try c.command("show routes"))
        XCTAssertEqual(routes["routes"]?.array?.first?["route"]?.string, "shop")
        XCTAssertEqual(routes["routes"]?.array?.first?["upgrades"]?.array?.map { $0.string }, ["websocket"])
        let variants = routes["variants"]?.array ?? []
        XCTAssertEqual(variants.map { $0["variant"]?.string }, ["stable", "canary"])
        XCTAssertEqual(variants.map { $0["weight"]?.int }, [100, 0])

        let upstreams = expectOK(try c.command("show upstreams"))
        let checkout = upstreams["upstreams"]?.array?.first { $0["upstream"]?.string == "checkout" }
        XCTAssertEqual(checkout?["live"]?.string, "blue")
        let endpoints = upstreams["endpoints"]?.array ?? []
        XCTAssertEqual(endpoints.count, 4)
        let blueRow = endpoints.first { $0["color"]?.string == "blue" }
        XCTAssertEqual(blueRow?["address"]?.string, fixture.blue.endpoint)
        XCTAssertEqual(blueRow?["live"]?.bool, true)
        XCTAssertEqual(blueRow?["inFlight"]?.int, 0)

        let state = expectOK(try c.command("show state"))
        XCTAssertEqual(state["overrides"]?.array?.count, 0)
        XCTAssertEqual(state["stateFile"]?.string, fixture.statePath)

        let http = try fixture.http()
        for _ in 0..<3 { XCTAssertEqual(try http.get().name, "blue") }
        let stats = expectOK(try c.command("show stats"))
        let stable = stats["requests"]?.array?.first { $0["variant"]?.string == "stable" }
        XCTAssertEqual(stable?["requests"]?.int, 3)
        XCTAssertEqual(stats["totals"]?["requests"]?.int, 3)
        XCTAssertNotNil(stats["endpoints"]?.array?.first?["inFlight"])
    }

    func testFlipAnswersLiveAndPreviousAndTheNextRequestIsServedByTheNewColor() throws {
        let c = try fixture.client()
        let http = try fixture.http()
        XCTAssertEqual(try http.get().name, "blue")
        let flip = expectOK(try c.command("flip checkout"))
        XCTAssertEqual(flip["live"]?.string, "green")
        XCTAssertEqual(flip["previous"]?.string, "blue")
        XCTAssertEqual(flip.version, 2)
        XCTAssertEqual(try http.get().name, "green")
        let back = expectOK(try c.command("set live checkout blue"))
        XCTAssertEqual(back["previous"]?.string, "green")
        XCTAssertEqual(back.version, 3)
        XCTAssertEqual(try http.get().name, "blue")
    }

    func testSetWeightsAndMirrorAndEndpointCommands() throws {
        let c = try fixture.client()
        let http = try fixture.http()
        let weights = expectOK(try c.command("set weights shop stable=0 canary=100"))
        XCTAssertEqual(weights["weights"]?["canary"]?.int, 100)
        XCTAssertEqual(weights["previous"]?["stable"]?.int, 100)
        XCTAssertEqual(try http.get().name, "canary")

        let mirror = expectOK(try c.command("set mirror shop shadow 100"))
        XCTAssertEqual(mirror["percent"]?.int, 100)
        XCTAssertEqual(mirror["previous"]?.int, 0)
        _ = try http.get()
        XCTAssertTrue(waitUntil { !self.fixture.shadow.requests.isEmpty }, "the mirror sent a copy")
        let removed = expectOK(try c.command("set mirror shop shadow 0"))
        XCTAssertEqual(removed["removed"]?.bool, true)

        let add = expectOK(try c.command("endpoint add canary \(fixture.shadow.endpoint)"))
        XCTAssertEqual(add["action"]?.string, "add")
        let names = Set(try (0..<6).map { _ in try http.get().name ?? "" })
        XCTAssertEqual(names, ["canary", "shadow"], "round robin over both endpoints")
        expectOK(try c.command("endpoint drain canary \(fixture.shadow.endpoint)"))
        XCTAssertEqual(Set(try (0..<4).map { _ in try http.get().name ?? "" }), ["canary"])
        expectOK(try c.command("endpoint remove canary \(fixture.shadow.endpoint)"))
        let rows = expectOK(try c.command("show upstreams"))["endpoints"]?.array ?? []
        XCTAssertFalse(rows.contains { $0["address"]?.string == fixture.shadow.endpoint && $0["upstream"]?.string == "canary" })

        let state = expectOK(try c.command("show state"))
        let settings = state["overrides"]?.array?.map { $0["setting"]?.string ?? "" } ?? []
        XCTAssertEqual(Set(settings), ["weight stable", "weight canary"])
        let reset = expectOK(try c.command("reset shop"))
        XCTAssertEqual(reset["dropped"]?.array?.count, 2)
        XCTAssertEqual(try http.get().name, "blue")
        XCTAssertEqual(expectOK(try c.command("show state"))["overrides"]?.array?.count, 0)
    }

    func testTransactionCommands() throws {
        let c = try fixture.client()
        let http = try fixture.http()
        expectOK(try c.command("begin"))
        let staged = expectOK(try c.command("flip checkout"))
        XCTAssertEqual(staged["staged"]?.bool, true)
        XCTAssertEqual(try http.get().name, "blue", "nothing changes before commit")
        expectOK(try c.command("set weights shop stable=50 canary=50"))
        let shown = expectOK(try c.command("show state"))
        XCTAssertEqual(shown["transaction"]?["staged"]?.array?.count, 2)
        let commit = expectOK(try c.command("commit"))
        XCTAssertEqual(commit["committed"]?.int, 2)
        XCTAssertEqual(commit.version, 2, "one snapshot for the whole transaction")
        XCTAssertEqual(try http.get(headers: ["X-Switchyard-Variant: stable"]).name, "green")

        expectOK(try c.command("begin"))
        expectOK(try c.command("flip checkout"))
        let aborted = expectOK(try c.command("abort"))
        XCTAssertEqual(aborted["aborted"]?.int, 1)
        XCTAssertEqual(try http.get(headers: ["X-Switchyard-Variant: stable"]).name, "green")

        expectError(try c.command("commit"), "no transaction is open")
        expectError(try c.command("abort"), "no transaction is open")
        expectOK(try c.command("begin"))
        expectError(try c.command("begin"), "already open")
        expectError(try c.command("reload"), "finish the transaction first")
        expectError(try c.command("set weights shop stable=0 canary=0"), "would all be 0")
        expectOK(try c.command("abort"))
    }

    func testReloadCommand() throws {
        let reply = expectOK(try fixture.command("reload"))
        XCTAssertEqual(reply.version, 2)
        XCTAssertEqual(reply["restartNeeded"]?.array?.count, 0)
    }

    func testQuitClosesTheConnection() throws {
        let c = try fixture.client()
        XCTAssertEqual(try c.command("quit")["bye"]?.bool, true)
        XCTAssertNil(try c.readLine())
    }

    func testLinesPipelinedBehindQuitAreNotRun() throws {
        let c = try fixture.client()
        try c.sendRaw(Array("quit\nflip checkout\n".utf8))
        XCTAssertEqual(ControlValue(json: try c.readLine() ?? "")?["bye"]?.bool, true)
        XCTAssertNil(try c.readLine())
        XCTAssertEqual(fixture.state.queue.sync { fixture.state.version }, 1)
    }

    // MARK: bad input

    func testBadInputGetsPreciseErrorsAndTheConnectionStaysUsable() throws {
        let c = try fixture.client()
        let cases: [(String, String)] = [
            ("flp checkout", #"unknown command "flp" (did you mean "flip"?)"#),
            ("show routs", #"unknown command "show routs" (did you mean "show routes"?)"#),
            ("show", #""show" needs one of: routes, upstreams, state, stats"#),
            ("frobnicate", #"unknown command "frobnicate"; try "help""#),
            ("flip", "flip: name the upstream; usage: flip UPSTREAM [--no-warmup]"),
            ("flip chekout", #"unknown upstream "chekout" (did you mean "checkout"?)"#),
            ("flip canary", #"upstream "canary" is not blue/green; blue/green upstreams: checkout"#),
            ("flip checkout --no-warmpu", #"unknown option "--no-warmpu" (did you mean "--no-warmup"?)"#),
            ("set live checkout purple", "color must be blue or green"),
            ("set weights shop", "give at least one VARIANT=W"),
            ("set weights shp stable=1", #"unknown route "shp" (did you mean "shop"?)"#),
            ("set weights shop stabel=1", #"route "shop" has no variant "stabel" (did you mean "stable"?)"#),
            ("set weights shop stable=-1", #"weight of "stable" must be a whole number from 0 to 1000000, got "-1""#),
            ("set weights shop stable=x", #"got "x""#),
            ("set weights shop stable", "expected VARIANT=WEIGHT"),
            ("set weights shop stable=1 stable=2", "named twice"),
            ("set weights shop stable=0", "would all be 0"),
            ("set mirror shop shadow 101", "PERCENT must be a number from 0 to 100"),
            ("set mirror shop shadw 5", #"unknown upstream "shadw" (did you mean "shadow"?)"#),
            ("set mirror shop shadow 0", #"has no mirror to "shadow" to remove"#),
            ("set mirror shop shadow", "missing arguments; usage: set mirror ROUTE UPSTREAM PERCENT"),
            ("endpoint add checkout 127.0.0.1:9", "is blue/green: name a color"),
            ("endpoint add checkout/purple 127.0.0.1:9", "must be blue or green"),
            ("endpoint add canary/blue 127.0.0.1:9", "has one pool, not colors"),
            ("endpoint add canary nonsense", "missing port"),
            ("endpoint add canary \(fixture.canary.endpoint)", "is already in canary"),
            ("endpoint remove canary 127.0.0.1:1", "no endpoint 127.0.0.1:1 in canary"),
            ("endpoint remove canary \(fixture.canary.endpoint)", "last endpoint of canary"),
            ("endpoint drain checkout/blue \(fixture.blue.endpoint)", "last serving endpoint of checkout/blue, which is live"),
            ("endpoint dran canary 1.2.3.4:5", #"(did you mean "endpoint drain"?)"#),
            ("reset nothing", #"no route or upstream "nothing""#),
            ("help nope", "unknown command"),
            ("show routes extra", #"unexpected "extra""#),
        ]
        for (line, fragment) in cases {
            let reply = try c.command(line)
            expectError(reply, fragment)
            if !reply.error.contains(fragment) { print("\(line) -> \(reply.error)") }
        }
        expectOK(try c.command("show state"))
        XCTAssertEqual(fixture.state.queue.sync { fixture.state.version }, 1, "no bad command changed anything")
    }

    func testOverlongLineIsRefusedAndTheConnectionStaysUsable() throws {
        let c = try fixture.client()
        try c.sendRaw(Array(repeating: UInt8(ascii: "a"), count: 70_000) + [10])
        let reply = ControlValue(json: try c.readLine() ?? "") ?? .null
        expectError(reply, "line too long: 70000 bytes, the limit is 65536")
        expectOK(try c.command("show state"))
    }

    func testBlankAndCommentLinesGetNoReply() throws {
        let c = try fixture.client()
        try c.sendRaw(Array("\n# a comment\n   \nhelp flip\n".utf8))
        let reply = ControlValue(json: try c.readLine() ?? "") ?? .null
        XCTAssertEqual(reply["command"]?.string, "flip UPSTREAM [--no-warmup] " + GuardOptions.usage)
    }

    // MARK: concurrency

    func testPipelinedCommandsAreAnsweredInOrder() throws {
        let c = try fixture.client()
        var batch = ""
        for i in 0..<100 { batch += i % 2 == 0 ? "flip checkout\n" : "help flip\n" }
        batch += "show state\nflp\n"
        try c.sendRaw(Array(batch.utf8))
        var version = 1
        for i in 0..<100 {
            let reply = ControlValue(json: try c.readLine() ?? "") ?? .null
            expectOK(reply)
            if i % 2 == 0 {
                version += 1
                XCTAssertEqual(reply.version, version)
                XCTAssertEqual(reply["live"]?.string, version % 2 == 0 ? "green" : "blue")
            } else {
                XCTAssertNotNil(reply["summary"])
            }
        }
        expectOK(ControlValue(json: try c.readLine() ?? "") ?? .null)
        expectError(ControlValue(json: try c.readLine() ?? "") ?? .null, "unknown command")
    }

    func testHalfClosedClientStillGetsEveryReply() throws {
        let c = try fixture.client()
        try c.sendRaw(Array("help flip\nshow state".utf8))
        c.finishSending()
        XCTAssertNotNil(ControlValue(json: try c.readLine() ?? "")?["summary"])
        XCTAssertNotNil(ControlValue(json: try c.readLine() ?? "")?["overrides"])
        XCTAssertNil(try c.readLine())
    }

    func testTwoClientsAtOnce() throws {
        let path = fixture.socketPath
        let failures = LogLines()
        DispatchQueue.concurrentPerform(iterations: 4) { n in
            do {
                let c = try ControlClient(path: path, timeout: 20)
                for _ in 0..<50 {
                    let reply = try c.command(n % 2 == 0 ? "flip checkout" : "show upstreams")
                    if !reply.ok { failures.append(reply.json) }
                }
            } catch {
                failures.append("\(error)")
            }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertEqual(fixture.state.queue.sync { fixture.state.version }, 101, "every flip applied once")
        let live = expectOK(try fixture.command("show upstreams"))["upstreams"]?.array?.first { $0["upstream"]?.string == "checkout" }
        XCTAssertEqual(live?["live"]?.string, "blue", "100 flips: back to blue")
    }

    /// Closing the connection aborts its transaction: once the server has handled the close (not
    /// after a guessed pause), the staged flip is nowhere: version, traffic, overrides, live
    /// color. A close that committed what was staged fails here.
    func testDisconnectAbortsTheTransaction() throws {
        do {
            let c = try fixture.client()
            expectOK(try c.command("begin"))
            XCTAssertEqual(expectOK(try c.command("flip checkout"))["staged"]?.bool, true)
            XCTAssertEqual(fixture.control.clientCount, 1)
        }
        XCTAssertTrue(waitUntil { self.fixture.control.clientCount == 0 }, "the server handled the close")
        fixture.state.queue.sync {}   // the abort the close queued has run
        XCTAssertEqual(fixture.state.queue.sync { fixture.state.version }, 1)
        XCTAssertEqual(try fixture.http().get().name, "blue")
        let shown = expectOK(try fixture.command("show state"))
        XCTAssertEqual(shown["overrides"]?.array?.count, 0, shown.json)
        XCTAssertNil(shown["transaction"], "a new client has no transaction")
        let checkout = expectOK(try fixture.command("show upstreams"))["upstreams"]?.array?.first { $0["upstream"]?.string == "checkout" }
        XCTAssertEqual(checkout?["live"]?.string, "blue")
    }

    /// What a close runs on the session: its transaction and every staged change are dropped,
    /// so nothing of it can be committed later, and the next `begin` starts empty. An `end` that
    /// kept the transaction fails here.
    func testEndingASessionDropsItsTransaction() throws {
        let state = fixture.state!
        let engine = ControlEngine(state)
        let session = engine.makeSession()
        func run(_ line: String) -> ControlValue {
            state.queue.sync {
                nonisolated(unsafe) var reply: ControlValue = .null
                engine.execute(line, session: session) { reply = $0?.reply ?? .null }
                return reply
            }
        }
        expectOK(run("begin"))
        expectOK(run("flip checkout"))
        expectOK(run("set weights shop stable=50 canary=50"))
        XCTAssertEqual(run("show state")["transaction"]?["staged"]?.array?.count, 2)

        state.queue.sync { engine.end(session) }

        XCTAssertFalse(session.inTransaction)
        XCTAssertNil(run("show state")["transaction"])
        expectError(run("commit"), "no transaction is open")
        expectOK(run("begin"))
        XCTAssertEqual(run("show state")["transaction"]?["staged"]?.array?.count, 0, "the next transaction starts empty")
        XCTAssertEqual(expectOK(run("commit"))["committed"]?.int, 0)
        XCTAssertEqual(state.queue.sync { state.version }, 1)
        XCTAssertEqual(try fixture.http().get().name, "blue")
    }
}
