// Warm-up before a flip: the idle color gets the configured GETs first; the flip happens only if
// they all succeed, and the reply reports their latencies or the failure.
import Foundation
import Glibc
import XCTest
@testable import Control

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
        let (fd, port) = try TestSockets.refusing()
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
    func testOtherCommandsAreAnsweredWhileAFlipWarmsASlowColor() throws {
        let fixture = try ControlFixture { o in o.warmup = #""path": "/?delay=3000", "requests": 1, "timeoutMs": 10000"# }
        defer { fixture.stop() }
        nonisolated(unsafe) let f = fixture
        let flipping = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var flipReply: ControlValue?
        let flipper = Thread {
            flipReply = try? f.command("flip checkout")
            flipping.signal()
        }
        flipper.start()
        // Wait until the warm-up request has reached green, so the flip is in its warm-up.
        let deadline = Date().addingTimeInterval(10)
        while f.green.requests.isEmpty && Date() < deadline { usleep(2_000) }
        XCTAssertFalse(f.green.requests.isEmpty, "the warm-up request reached green")
        let started = Date()
        let state = expectOK(try f.command("show state"))
        let waited = Date().timeIntervalSince(started)
        XCTAssertNotNil(state["version"], "\(state)")
        XCTAssertLessThan(waited, 0.5, "show state waited \(waited) s behind the warm-up")
        XCTAssertEqual(try f.http().get().name, "blue", "blue serves while green warms")
        XCTAssertEqual(flipping.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(flipReply?["live"]?.string, "green")
        XCTAssertEqual(try f.http().get().name, "green")
    }

    /// A flip whose upstream was flipped by another client while it warmed changes nothing.
    func testAFlipWhoseColorChangedDuringTheWarmupIsRefused() throws {
        let fixture = try ControlFixture { o in o.warmup = #""path": "/?delay=1000", "requests": 1, "timeoutMs": 10000"# }
        defer { fixture.stop() }
        nonisolated(unsafe) let f = fixture
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var slowReply: ControlValue?
        Thread {
            slowReply = try? f.command("flip checkout")
            done.signal()
        }.start()
        let deadline = Date().addingTimeInterval(10)
        while f.green.requests.isEmpty && Date() < deadline { usleep(2_000) }
        expectOK(try f.command("set live checkout green --no-warmup"))
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        guard let reply = slowReply else { return XCTFail("no reply to the flip") }
        expectError(reply, "changed while green was warming up")
        XCTAssertEqual(try f.http().get().name, "green")
    }
}
