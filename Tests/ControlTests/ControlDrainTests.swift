// endpoint drain / remove with requests in flight: no new requests reach the endpoint, the one
// in flight finishes where it started, and `show upstreams` counts it down to 0.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class ControlDrainTests: XCTestCase {
    var fixture: ControlFixture!

    override func setUpWithError() throws {
        // canary's pool: the canary upstream and (as a second endpoint) the shadow upstream.
        fixture = try ControlFixture { options in
            options.workers = 1
        }
        fixture.options.extraCanaryEndpoints = [fixture.shadow.endpoint]
        try fixture.writeConfig()
        try fixture.restart()
        expectOK(try fixture.command("set weights shop stable=0 canary=100"))
    }

    override func tearDown() { fixture?.stop() }

    private func canaryRows() throws -> [ControlValue] {
        (expectOK(try fixture.command("show upstreams"))["endpoints"]?.array ?? []).filter { $0["upstream"]?.string == "canary" }
    }

    /// Starts a slow request; returns the endpoint it is in flight on and a way to wait for it.
    private func slowRequest() throws -> (endpoint: String, wait: () -> TestResponse?) {
        let port = fixture.port
        let result = Box()
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.response = try? HTTPTestClient(port: port).get("/?delay=1200")
            done.signal()
        }.start()
        var endpoint: String?
        XCTAssertTrue(waitUntil {
            endpoint = (try? self.canaryRows())?.first { $0["inFlight"]?.int == 1 }?["address"]?.string
            return endpoint != nil
        }, "the slow request shows as in flight")
        return (endpoint ?? "?", { done.wait(); return result.response })
    }

    func testDrainStopsNewRequestsAndCountsInFlightDownToZero() throws {
        let (busy, wait) = try slowRequest()
        let other = busy == fixture.canary.endpoint ? fixture.shadow : fixture.canary
        let drain = expectOK(try fixture.command("endpoint drain canary \(busy)"))
        XCTAssertEqual(drain["inFlight"]?.int, 1)
        let http = try fixture.http()
        for _ in 0..<6 { XCTAssertEqual(try http.get().name, other.name, "no new request reaches the draining endpoint") }
        let row = try canaryRows().first { $0["address"]?.string == busy }
        XCTAssertEqual(row?["draining"]?.bool, true)
        XCTAssertEqual(row?["live"]?.bool, false)
        XCTAssertEqual(row?["inFlight"]?.int, 1, "still in flight")
        XCTAssertEqual(row?["override"]?.string, "draining")
        let finished = wait()
        XCTAssertEqual(finished?.status, 200, "the in-flight request finished where it started")
        XCTAssertEqual(finished?.headers["x-name"].map { $0 != other.name }, true)
        XCTAssertTrue(waitUntil { (try? self.canaryRows().first { $0["address"]?.string == busy }?["inFlight"]?.int) == 0 })

        // `endpoint add` resumes it.
        let resumed = expectOK(try fixture.command("endpoint add canary \(busy)"))
        XCTAssertEqual(resumed["resumed"]?.bool, true)
        let names = Set(try (0..<6).map { _ in try http.get().name ?? "" })
        XCTAssertEqual(names, ["canary", "shadow"])
    }

    func testRemoveLetsTheInFlightRequestFinish() throws {
        let (busy, wait) = try slowRequest()
        expectOK(try fixture.command("endpoint remove canary \(busy)"))
        XCTAssertFalse(try canaryRows().contains { $0["address"]?.string == busy })
        XCTAssertEqual(wait()?.status, 200)
        let state = expectOK(try fixture.command("show state"))
        XCTAssertEqual(state["overrides"]?.array?.contains { $0["value"]?.string == "removed" }, true)
    }
}

final class Box: @unchecked Sendable {
    var response: TestResponse?
}
