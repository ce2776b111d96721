// A route's upgrade policy: every protocol offered must be on the route's list, by name,
// case-insensitively, whatever the version.
import Routing
import XCTest

final class UpgradePolicyTests: XCTestCase {
    func testEveryOfferedProtocolMustBeAllowed() {
        var custom = route("custom")
        custom.upgrades = [b("websocket"), b("my-proto")]
        var none = route("none")
        none.upgrades = []
        let snap = snapshot([route("default"), custom, none])
        let rows: [(headers: [String], route: Int, allowed: Bool, line: UInt)] = [
            (["websocket"], 0, true, #line),
            (["WebSocket/13"], 0, true, #line),
            (["my-proto"], 0, false, #line),
            (["my-proto"], 1, true, #line),
            (["My-Proto/2, websocket"], 1, true, #line),
            ([" websocket ,, my-proto "], 1, true, #line),
            (["websocket", "my-proto"], 1, true, #line),
            (["websocket, other"], 1, false, #line),
            (["websocket", "other"], 1, false, #line),
            (["my-protox"], 1, false, #line),
            (["websocket"], 2, false, #line),
            ([""], 0, false, #line),
            ([" , "], 0, false, #line),
            (["websocket"], -1, false, #line),
        ]
        for row in rows {
            let request = TestRequest(headers: row.headers.map { ("Upgrade", $0) })
            XCTAssertEqual(snap.allowsUpgrade(route: row.route, request), row.allowed, "\(row.headers) on \(row.route)", line: row.line)
        }
    }
}
