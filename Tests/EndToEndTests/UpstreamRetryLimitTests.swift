// Retries and per-endpoint limits through the real proxy: a 503 or a reset is tried again on
// another endpoint when the policy says so, never a POST whose body was sent, never beyond the
// budget; at maxConnections a request waits (maxPending) or gets a quick 503 with Retry-After.
import Foundation
import Glibc
import TestSupport
import XCTest

final class UpstreamRetryLimitTests: EndToEndTestCase {
    private func failingAndHealthy(status: Int = 503, retries: String) throws -> (RunningProxy, UInt16, Switchable, RawServer) {
        let stateA = Switchable()
        stateA.status = status
        let a = try startSwitchable(stateA, name: "a")
        let b = try startSwitchable(Switchable(), name: "b")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"""
             { "endpoints": ["127.0.0.1:\#(a.port)", "127.0.0.1:\#(b.port)"], "outlierDetection": false, "retries": \#(retries) }
             """#),
        ]))
        return (proxy, try adminPort(proxy), stateA, a)
    }

    func testA503IsRetriedOnAnotherEndpoint() throws {
        let (proxy, admin, stateA, _) = try failingAndHealthy(retries: #"{ "attempts": 2, "on": ["503"], "budgetPercent": 100 }"#)
        let client = try connect(proxy)
        for i in 0..<10 {
            let r = try client.exchange(get("/\(i)"))
            XCTAssertEqual(r.status, 200, "request \(i)")
            XCTAssertEqual(r.header("X-Name"), "b")
        }
        let retries = try metrics(adminPort: admin)["switchyard_upstream_policy_retries_total{upstream=\"app\"}"]
        XCTAssertEqual(retries, stateA.servedCount, "one retry for each answer a gave")
        XCTAssertGreaterThanOrEqual(retries, 1)
    }

    func testAPostWhoseBodyWasSentIsNotRetried() throws {
        let (proxy, admin, stateA, _) = try failingAndHealthy(retries: #"{ "attempts": 2, "on": ["503", "reset"], "budgetPercent": 100 }"#)
        var statuses: [Int] = []
        for i in 0..<6 {
            let r = try connect(proxy).exchange("POST /p\(i) HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
            statuses.append(r.status)
        }
        XCTAssertEqual(statuses.filter { $0 == 503 }.count, stateA.servedCount, "every POST a answered reached the client as is")
        XCTAssertGreaterThanOrEqual(stateA.servedCount, 1)
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_policy_retries_total{upstream=\"app\"}"], 0)
    }

    func testAResetBeforeTheAnswerIsRetriedForAGet() throws {
        let closer = try startServer { conn, _ in _ = conn.readHead() }   // reads the request, closes
        let b = try startSwitchable(Switchable(), name: "b")
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"""
             { "endpoints": ["127.0.0.1:\#(closer.port)", "127.0.0.1:\#(b.port)"], "outlierDetection": false,
               "retries": { "attempts": 2, "on": ["reset"], "budgetPercent": 100 } }
             """#),
        ]))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<6 { XCTAssertEqual(try client.exchange(get("/\(i)")).status, 200, "request \(i)") }
        XCTAssertGreaterThanOrEqual(closer.acceptedCount, 1)
        XCTAssertGreaterThanOrEqual(try metrics(adminPort: admin)["switchyard_upstream_policy_retries_total{upstream=\"app\"}"], 1)
    }

    func testTheBudgetCapsRetries() throws {
        // No budget at all: nothing is retried, and the refusals are counted.
        var (proxy, admin, stateA, _) = try failingAndHealthy(
            retries: #"{ "attempts": 2, "on": ["503"], "budgetPercent": 0, "minRetries": 0 }"#)
        var client = try connect(proxy)
        var failures = 0
        for i in 0..<10 where try client.exchange(get("/\(i)")).status == 503 { failures += 1 }
        var m = try metrics(adminPort: admin)
        XCTAssertEqual(failures, stateA.servedCount)
        XCTAssertGreaterThanOrEqual(failures, 1)
        XCTAssertEqual(m["switchyard_upstream_policy_retries_total{upstream=\"app\"}"], 0)
        XCTAssertEqual(m["switchyard_upstream_retry_budget_exhausted_total{upstream=\"app\"}"], failures)

        // 25%: half the requests meet a first, a quarter of them may retry.
        (proxy, admin, stateA, _) = try failingAndHealthy(
            retries: #"{ "attempts": 2, "on": ["503"], "budgetPercent": 25, "minRetries": 0 }"#)
        client = try connect(proxy)
        for i in 0..<40 { _ = try client.exchange(get("/\(i)")) }
        m = try metrics(adminPort: admin)
        let retries = m["switchyard_upstream_policy_retries_total{upstream=\"app\"}"]
        XCTAssertGreaterThanOrEqual(retries, 1)
        XCTAssertLessThanOrEqual(retries, 10, "at most 25% of 40 requests")
        XCTAssertGreaterThanOrEqual(m["switchyard_upstream_retry_budget_exhausted_total{upstream=\"app\"}"], 1)
    }

    /// An upstream that holds every request until the test lets it answer.
    private func heldServer(_ gate: DispatchSemaphore) throws -> RawServer {
        try startServer { conn, server in
            while let head = conn.readHead() {
                server.record(head)
                _ = gate.wait(timeout: .now() + 10)
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            }
        }
    }

    func testBeyondMaxConnectionsA503WithRetryAfterComesAtOnce() throws {
        let gate = DispatchSemaphore(value: 0)
        let server = try heldServer(gate)
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(server.port)"], "maxConnections": 1 }"#),
        ]))
        let admin = try adminPort(proxy)
        let first = try connect(proxy)
        try first.send(get("/held"))
        XCTAssertTrue(waitUntil { server.recordedHeads.count == 1 })
        let started = Date()
        let r = try connect(proxy).exchange(get("/second"))
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "1")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_rejected_max_connections_total{upstream=\"app\"}"], 1)
        gate.signal()
        XCTAssertEqual(try first.readResponse().status, 200)
        XCTAssertEqual(server.recordedHeads.count, 1, "the refused request never reached the upstream")
    }

    func testMaxPendingRequestsWaitForASlotAndTheRestAreRefused() throws {
        let gate = DispatchSemaphore(value: 0)
        let server = try heldServer(gate)
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(server.port)"], "maxConnections": 1, "maxPending": 1 }"#),
        ], connectMs: 10_000))
        let admin = try adminPort(proxy)
        let first = try connect(proxy)
        try first.send(get("/first"))
        XCTAssertTrue(waitUntil { server.recordedHeads.count == 1 })
        let second = try connect(proxy)
        try second.send(get("/second"))
        try waitForMetrics(adminPort: admin) { $0["switchyard_upstream_pending_total{upstream=\"app\"}"] == 1 }
        let third = try connect(proxy).exchange(get("/third"))
        XCTAssertEqual(third.status, 503)
        XCTAssertEqual(third.header("Retry-After"), "1")
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_rejected_max_pending_total{upstream=\"app\"}"], 1)
        gate.signal()
        XCTAssertEqual(try first.readResponse().status, 200)
        gate.signal()
        XCTAssertEqual(try second.readResponse().status, 200, "the waiting request got the freed slot")
        XCTAssertEqual(server.recordedHeads.count, 2)
    }

    func testAWaitThatOutlastsConnectMsIsA503() throws {
        let gate = DispatchSemaphore(value: 0)
        let server = try heldServer(gate)
        defer { gate.signal() }
        let proxy = try startProxy(json: policyConfig(upstreams: [
            ("app", #"{ "endpoints": ["127.0.0.1:\#(server.port)"], "maxConnections": 1, "maxPending": 4 }"#),
        ], connectMs: 200))
        let admin = try adminPort(proxy)
        let first = try connect(proxy)
        try first.send(get("/first"))
        XCTAssertTrue(waitUntil { server.recordedHeads.count == 1 })
        let r = try connect(proxy).exchange(get("/second"))
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "1")
        XCTAssertEqual(try metrics(adminPort: admin)["switchyard_upstream_pending_timeouts_total{upstream=\"app\"}"], 1)
    }
}
