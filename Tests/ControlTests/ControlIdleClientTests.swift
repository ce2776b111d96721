// Availability of the control socket: clients that connect and say nothing are closed after the
// idle time-out, and when every slot is taken the oldest idle client makes room for a new one,
// so 64 silent connections no longer lock every operator out.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlIdleClientTests: XCTestCase {
    var dir = ""
    var server: ControlServer?

    override func setUpWithError() throws {
        dir = try TemporaryDirectory.make(prefix: "sy-idle")
    }

    override func tearDown() {
        server?.stop()
        TemporaryDirectory.remove(dir)
    }

    private func start(idleTimeout: Double? = nil) throws -> ControlServer {
        let text = #"{ "listeners": [{"address": "127.0.0.1:0"}], "upstreams": {"a": {"endpoints": ["127.0.0.1:9", "127.0.0.1:10"]}}, "routes": [{"name": "r", "upstream": "a"}] }"#
        let loaded = try ConfigLoader.parse(data: Data(text.utf8), file: "t.json")
        let engine = ControlEngine(try RuntimeState(loaded: loaded, source: .file("t.json"), log: { _ in }))
        let path = dir + "/c.sock"
        let server = try idleTimeout.map { try ControlServer(path: path, mode: 0o600, idleTimeout: $0) }
            ?? ControlServer(path: path, mode: 0o600)
        server.start(engine)
        self.server = server
        return server
    }

    private func connect() throws -> ControlClient { try ControlClient(path: dir + "/c.sock", timeout: 10) }

    /// The closing line the server sent, once it closed the connection.
    private func closingLine(_ c: ControlClient) throws -> String? {
        let line = try c.readLine()
        XCTAssertNil(try c.readLine(), "closed after the line")
        return line
    }

    func testSixtyFourSilentClientsDoNotLockOperatorsOut() throws {
        let server = try start()
        var silent: [ControlClient] = []
        for _ in 0..<ControlServer.maxClients {
            silent.append(try connect())
            // One at a time, so the server accepts them in this order.
            let count = silent.count
            XCTAssertTrue(waitUntil(timeout: 5) { server.clientCount == count }, "\(server.clientCount) of \(count)")
        }
        let operatorClient = try connect()
        let reply = try operatorClient.command("help quit")
        XCTAssertEqual(reply["ok"]?.bool, true, reply.json)
        let line = try closingLine(silent[0])
        XCTAssertTrue(line?.contains("the oldest idle of 64 control clients makes room for a new one") == true, line ?? "nil")
        XCTAssertEqual(try silent[1].command("help quit")["ok"]?.bool, true, "only the oldest was closed")
        XCTAssertEqual(server.clientCount, ControlServer.maxClients)
    }

    func testAClientInATransactionIsTheLastToMakeRoom() throws {
        let server = try start()
        let inTransaction = try connect()
        XCTAssertEqual(try inTransaction.command("begin")["ok"]?.bool, true)
        XCTAssertEqual(try inTransaction.command("endpoint drain a 127.0.0.1:9")["staged"]?.bool, true)
        var silent: [ControlClient] = []
        for _ in 1..<ControlServer.maxClients {
            silent.append(try connect())
            let count = silent.count + 1
            XCTAssertTrue(waitUntil(timeout: 5) { server.clientCount == count })
        }
        XCTAssertEqual(try connect().command("help quit")["ok"]?.bool, true)
        XCTAssertTrue(try closingLine(silent[0])?.contains("makes room") == true)
        let committed = try inTransaction.command("commit")
        XCTAssertEqual(committed["committed"]?.int, 1, committed.json)
    }

    func testIdleClientsAreClosedAfterTheTimeoutButNotInATransaction() throws {
        let server = try start(idleTimeout: 0.2)
        let idle = try connect()
        let busy = try connect()
        XCTAssertEqual(try busy.command("begin")["ok"]?.bool, true)
        let trickle = try connect()
        try trickle.sendRaw(Array("hel".utf8))  // an unfinished line is not a command
        let line = try closingLine(idle)
        XCTAssertTrue(line?.contains("closing: no command for 0.2 s (control.idleTimeoutMs)") == true, line ?? "nil")
        XCTAssertTrue(try closingLine(trickle)?.contains("no command") == true)
        XCTAssertTrue(waitUntil(timeout: 5) { server.clientCount == 1 }, "\(server.clientCount)")
        // The transaction's client was idle as long, and keeps its transaction.
        XCTAssertEqual(try busy.command("endpoint drain a 127.0.0.1:9")["staged"]?.bool, true)
        XCTAssertEqual(try busy.command("commit")["committed"]?.int, 1)
        // Out of the transaction, it times out too.
        XCTAssertTrue(try closingLine(busy)?.contains("no command") == true)
    }

    func testTheIdleTimeoutIsConfigurable() throws {
        let config = try XCTUnwrap(parse(Doc.make(extra: #""control": { "socket": "/tmp/x.sock", "idleTimeoutMs": 1500 }"#))).config
        XCTAssertEqual(config.control?.idleTimeoutMs, 1500)
        XCTAssertEqual(Config.ControlSocket().idleTimeoutMs, 60_000)
        assertError(Doc.make(extra: #""control": { "idleTimeoutMs": 0 }"#), "control.idleTimeoutMs")
        assertError(Doc.make(extra: #""control": { "idleTimeoutMs": 86400001 }"#), "control.idleTimeoutMs")
    }
}
