// An upstream's mirror maxInFlight holds for the whole proxy, not per worker: with four workers
// and a shadow that never answers, no more than maxInFlight copies are ever outstanding.
import Foundation
import Glibc
import TestSupport
import XCTest

final class MirrorLimitTests: EndToEndTestCase {
    func testMaxInFlightHoldsAcrossWorkers() throws {
        // Reads every copy, answers none: each one stays in flight until responseMs.
        let shadow = try startServer { conn, server in
            while let head = conn.readHead() { server.record(head) }
        }
        let app = try startEcho(name: "app")
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }"#
        let shadowUpstream = #"{ "endpoints": ["127.0.0.1:\#(shadow.port)"], "maxInFlight": 5 }"#
        let proxy = try startProxy(json: routingConfig(upstreams: [("app", pool(app.endpoint)), ("shadow", shadowUpstream)],
                                                       routes: [route], workers: 4, responseMs: 20_000, admin: true))
        let admin = try adminPort(proxy)
        // Many connections, so every worker (SO_REUSEPORT spreads them) makes copies.
        var clients: [RawClient] = []
        for _ in 0..<48 { clients.append(try connect(proxy)) }
        for (i, client) in clients.enumerated() { try client.send(get("/copy/\(i)")) }
        for client in clients { XCTAssertEqual(try client.readResponse().status, 200) }

        // Each request's copy was admitted (sent) or dropped at the limit when it was answered;
        // the admitted ones then reach the shadow.
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorSent + $0["switchyard_mirror_dropped_total"] == 48 }
        XCTAssertEqual(m.mirrorSent + m["switchyard_mirror_dropped_total"], 48, "every copy admitted or dropped")
        XCTAssertLessThanOrEqual(m.mirrorSent, 5, "at most maxInFlight copies outstanding over all workers, got \(m.mirrorSent)")
        XCTAssertTrue(waitUntil { shadow.recordedHeads.count == m.mirrorSent }, "the admitted copies reached the shadow")
        let copies = shadow.recordedHeads.count
        XCTAssertLessThanOrEqual(copies, 5, "at most maxInFlight copies outstanding over all workers, got \(copies)")
        XCTAssertGreaterThan(copies, 0)
    }
}
