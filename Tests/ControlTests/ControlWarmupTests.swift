// Warm-up before a flip: the idle color gets the configured GETs first; the flip happens only if
// they all succeed, and the reply reports their latencies or the failure.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlWarmupTests: XCTestCase {
    var fixture: ControlFixture?
    var refusing: Int32 = -1

    override func tearDown() {
        fixture?.stop()
        if refusing >= 0 { close(refusing) }
    }

    private func start(warmup: String, _ configure: (inout ControlFixture.Options) -> Void = { _ in }) throws -> ControlFixture {
        let f = try ControlFixture { o in
            o.warmup = warmup
            configure(&o)
        }
        fixture = f
        return f
    }

    func testWarmupRunsBeforeTheFlipAndReportsLatencies() throws {
        let f = try start(warmup: #""path": "/warm", "requests": 4, "timeoutMs": 2000"#)
        let reply = expectOK(try f.command("flip checkout"))
        XCTAssertEqual(reply["live"]?.string, "green")
        let warmup = reply["warmup"]
        XCTAssertEqual(warmup?["requests"]?.int, 4)
        XCTAssertEqual(warmup?["latenciesMs"]?.array?.count, 4)
        XCTAssertNotNil(warmup?["p50Ms"]?.double)
        XCTAssertEqual(warmup?["endpoints"]?.array?.first?.string, f.green.endpoint)
        let warmed = f.green.requests.filter { $0.hasPrefix("GET /warm HTTP/1.1") }
        XCTAssertEqual(warmed.count, 4)
        XCTAssertTrue(warmed.allSatisfy { $0.contains("X-Switchyard-Warmup: 1") })
        XCTAssertEqual(try f.http().get().name, "green")

        // Flipping back warms blue.
        let back = expectOK(try f.command("flip checkout"))
        XCTAssertEqual(back["live"]?.string, "blue")
        XCTAssertEqual(f.blue.requests.filter { $0.hasPrefix("GET /warm") }.count, 4)
    }

    func testRefusedWarmupChangesNothing() throws {
        let (fd, port) = try Sockets.bound(listen: false)
        refusing = fd
        let f = try start(warmup: #""requests": 3, "timeoutMs": 500"#) { $0.greenEndpoints = ["127.0.0.1:\(port)"] }
        let reply = try f.command("flip checkout")
        expectError(reply, "warm-up of checkout/green failed, nothing changed (blue is still live)")
        XCTAssertTrue(reply.error.contains("Connection refused"), reply.error)
        XCTAssertNotNil(reply["warmup"]?["failure"])
        XCTAssertEqual(f.state.queue.sync { f.state.version }, 1)
        XCTAssertEqual(try f.http().get().name, "blue")

        let skipped = expectOK(try f.command("flip checkout --no-warmup"))
        XCTAssertEqual(skipped["warmup"]?.string, "skipped")
        XCTAssertEqual(skipped["live"]?.string, "green")
    }

    func testServerErrorAndTimeoutFailTheWarmup() throws {
        let f = try start(warmup: #""path": "/", "requests": 2, "timeoutMs": 300"#)
        f.green.status = 503
        expectError(try f.command("flip checkout"), "answered GET / with 503")
        f.green.status = 200
        // A second, slow warm-up path via set live: the answer takes longer than timeoutMs.
        let slow = try ControlFixture { o in o.warmup = #""path": "/?delay=800", "requests": 1, "timeoutMs": 200"# }
        defer { slow.stop() }
        let started = Date()
        expectError(try slow.command("set live checkout green"), "no complete answer within 200 ms")
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.7)
        XCTAssertEqual(try slow.http().get().name, "blue")
        // Once warm-up succeeds the flip goes through.
        expectOK(try f.command("flip checkout"))
        XCTAssertEqual(try f.http().get().name, "green")
    }

    func testSetLiveToTheLiveColorSkipsWarmup() throws {
        let f = try start(warmup: #""requests": 2"#)
        let reply = expectOK(try f.command("set live checkout blue"))
        XCTAssertEqual(reply["unchanged"]?.bool, true)
        XCTAssertNil(reply["warmup"])
        XCTAssertTrue(f.green.requests.isEmpty)
    }
}

/// A warm-up runs on an event loop: while a flip waits for a slow idle color, other clients'
/// commands are answered at once (a 3 s warm-up held every command for its whole length).
final class ControlWarmupConcurrencyTests: XCTestCase {
    /// A flip sent from another thread, caught in its warm-up: green has received the warm-up
    /// request (which `delayMs` holds). `reply` waits for the flip's answer.
    private struct PendingFlip {
        let reply: () -> ControlValue?
    }

    private func flipInWarmup(_ f: ControlFixture, file: StaticString = #filePath, line: UInt = #line) -> PendingFlip {
        nonisolated(unsafe) let fixture = f
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var answer: ControlValue?
        Thread {
            answer = try? fixture.command("flip checkout")
            done.signal()
        }.start()
        XCTAssertTrue(waitUntil(timeout: 10) { !fixture.green.requests.isEmpty }, "the warm-up request reached green",
                      file: file, line: line)
        return PendingFlip {
            done.wait(timeout: .now() + 15) == .success ? answer : nil
        }
    }

    func testOtherCommandsAreAnsweredWhileAFlipWarmsASlowColor() throws {
        let f = try ControlFixture { o in o.warmup = #""path": "/?delay=3000", "requests": 1, "timeoutMs": 10000"# }
        defer { f.stop() }
        let flip = flipInWarmup(f)
        let started = Date()
        let state = expectOK(try f.command("show state"))
        let waited = Date().timeIntervalSince(started)
        XCTAssertNotNil(state["version"], "\(state)")
        XCTAssertLessThan(waited, 0.5, "show state waited \(waited) s behind the warm-up")
        XCTAssertEqual(try f.http().get().name, "blue", "blue serves while green warms")
        XCTAssertEqual(flip.reply()?["live"]?.string, "green")
        XCTAssertEqual(try f.http().get().name, "green")
    }

    /// A flip whose upstream was flipped by another client while it warmed changes nothing.
    func testAFlipWhoseColorChangedDuringTheWarmupIsRefused() throws {
        let f = try ControlFixture { o in o.warmup = #""path": "/?delay=1000", "requests": 1, "timeoutMs": 10000"# }
        defer { f.stop() }
        let flip = flipInWarmup(f)
        expectOK(try f.command("set live checkout green --no-warmup"))
        guard let reply = flip.reply() else { return XCTFail("no reply to the flip") }
        expectError(reply, "changed while green was warming up")
        XCTAssertEqual(try f.http().get().name, "green")
    }
}
