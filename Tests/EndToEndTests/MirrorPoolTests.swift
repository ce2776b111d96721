// Shadow copies and primary requests go through one upstream client: a shadow that is also a
// primary upstream gets both over the same keep-alive connections, taken from and given back
// to one pool.
import Foundation
import TestSupport
import XCTest

final class MirrorPoolTests: EndToEndTestCase {
    func testCopiesAndPrimariesShareKeepAliveConnections() throws {
        let both = try startSwitchable(Switchable(), name: "both")
        let app = try startEcho(name: "app")
        let routes = [
            #"{ "name": "direct", "match": { "pathPrefix": "/direct/" }, "upstream": "both" }"#,
            #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "both", "percent": 100 } ] }"#,
        ]
        let proxy = try startProxy(json: routingConfig(
            upstreams: [("app", pool(app.endpoint)), ("both", pool("127.0.0.1:\(both.port)"))], routes: routes, workers: 1,
            admin: true))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<5 {
            XCTAssertEqual(try client.exchange(get("/direct/\(i)")).header("X-Name"), "both")
            XCTAssertEqual(try client.exchange(get("/copied/\(i)")).status, 200)
            // The copy is answered before the next primary goes: its connection is idle again.
            XCTAssertEqual(try waitForMetrics(adminPort: admin) { $0.mirrorCompleted == i + 1 }.mirrorCompleted, i + 1)
        }
        let paths = both.recordedHeads.compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }
        XCTAssertEqual(paths, (0..<5).flatMap { ["/direct/\($0)", "/copied/\($0)"] }, "primaries and copies, in turn")
        XCTAssertEqual(both.acceptedCount, 1, "copies and primaries took turns on one keep-alive connection")
    }
}
