// Atomicity under load: a transaction of weights and a flip is never seen half applied; flips
// lose no request and the first request after a flip's reply goes to the new color.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlAtomicityTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws { fixture = try ControlFixture() }
    override func tearDown() { fixture?.stop() }

    /// Runs `threads` keep-alive clients until `work` returns; every answer goes to `record`.
    private func underLoad(threads: Int, _ record: @escaping @Sendable (String) -> Void,
                           _ work: () throws -> Void) rethrows {
        let stop = Flag()
        let answered = Flag()
        let group = DispatchGroup()
        let port = fixture.port
        for _ in 0..<threads {
            group.enter()
            Thread {
                defer { group.leave() }
                var client: HTTPTestClient?
                while !stop.isSet {
                    do {
                        if client == nil { client = try HTTPTestClient(port: port) }
                        let r = try client!.get()
                        record(r.status == 200 ? (r.name ?? "no name") : "status \(r.status)")
                        answered.set()
                    } catch {
                        record("failed: \(error)")
                        client = nil
                    }
                }
            }.start()
        }
        defer {
            stop.set()
            group.wait()
        }
        XCTAssertTrue(waitUntil { answered.isSet }, "the load is running")
        try work()
    }

    func testTransactionOfWeightsAndFlipIsNeverSeenHalfApplied() throws {
        // State A: stable (checkout, blue live) takes everything. State B: canary takes
        // everything and green is live. Half of A->B or B->A would show green.
        let seen = Tally()
        let c = try fixture.client()
        try underLoad(threads: 4, { seen.add($0) }) {
            for i in 0..<60 {
                let toB = i % 2 == 0
                expectOK(try c.command("begin"))
                expectOK(try c.command("flip checkout"))
                expectOK(try c.command(toB ? "set weights shop stable=0 canary=100" : "set weights shop stable=100 canary=0"))
                expectOK(try c.command("commit"))
                usleep(5_000)
            }
        }
        let counts = seen.counts
        XCTAssertNil(counts["green"], "a half-applied transaction was observed: \(counts)")
        XCTAssertEqual(Set(counts.keys), ["blue", "canary"], "\(counts)")
        XCTAssertGreaterThan(counts.values.reduce(0, +), 500)
    }

    func testFlipsUnderLoadLoseNothingAndTakeEffectAtOnce() throws {
        let seen = Tally()
        let c = try fixture.client()
        let probe = try fixture.http()
        var late: [String] = []
        try underLoad(threads: 3, { seen.add($0) }) {
            var live = "blue"
            for _ in 0..<40 {
                let reply = expectOK(try c.command("flip checkout"))
                live = reply["live"]?.string ?? "?"
                let first = try probe.get()
                if first.name != live { late.append("after flip to \(live) got \(first.name ?? "?")") }
                usleep(50_000)
            }
        }
        XCTAssertEqual(late, [], "the first request after a flip's reply went to the old color")
        let counts = seen.counts
        XCTAssertEqual(Set(counts.keys), ["blue", "green"], "only blue or green, no failures: \(counts)")
    }

    func testIdlePooledConnectionsToTheOldColorAreClosed() throws {
        let http = try fixture.http()
        XCTAssertEqual(try http.get().name, "blue")
        XCTAssertEqual(fixture.blue.openConnections, 1, "the proxy keeps a pooled connection to blue")
        expectOK(try fixture.command("flip checkout"))
        XCTAssertTrue(waitUntil { self.fixture.blue.openConnections == 0 }, "idle connection to blue closed after the flip")
        XCTAssertEqual(try http.get().name, "green")
    }

    func testAConnectionBusyDuringTheFlipIsClosedWhenItsRequestEnds() throws {
        let port = fixture.port
        let done = DispatchSemaphore(value: 0)
        let answer = Box()
        Thread {
            answer.response = try? HTTPTestClient(port: port).get("/?delay=400")
            done.signal()
        }.start()
        XCTAssertTrue(waitUntil { self.fixture.blue.requests.count == 1 })
        expectOK(try fixture.command("flip checkout"))
        done.wait()
        XCTAssertEqual(answer.response?.name, "blue", "the request finished where it started")
        XCTAssertTrue(waitUntil { self.fixture.blue.openConnections == 0 }, "not put back in the pool")
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]
    func add(_ key: String) { lock.withLock { values[key, default: 0] += 1 } }
    var counts: [String: Int] { lock.withLock { values } }
}
