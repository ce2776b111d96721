// A route's `upgrades`: the protocols it tunnels. An offer the route allows gets the upstream's
// 101 and a tunnel; any other reaches the upstream as a plain request with no Upgrade, and a
// 101 to it is refused, so no tunnel opens.
import XCTest

final class UpgradePolicyTests: EndToEndTestCase {
    private func proxy(upgrades: String, to endpoint: String) throws -> RunningProxy {
        var config = ProxyConfig(endpoints: [endpoint])
        config.routes = ["{ \"name\": \"default\", \"upstream\": \"app\", \"upgrades\": \(upgrades) }"]
        return try startProxy(config)
    }

    private func upgradeRequest(_ protocols: String) -> String {
        "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: \(protocols)\r\n\r\n"
    }

    func testAllowedCustomProtocolIsTunnelled() throws {
        let echo = try startEcho()
        let proxy = try proxy(upgrades: "[\"websocket\", \"My-Proto\"]", to: echo.endpoint)
        let client = try connect(proxy)
        try client.send(upgradeRequest("my-proto/2"))
        let r = try client.readHead()
        XCTAssertEqual(r.status, 101)
        XCTAssertEqual(r.header("Upgrade"), "my-proto/2")
        for message in ["ping", String(repeating: "m", count: 50_000)] {
            try client.send(message)
            XCTAssertEqual(String(decoding: try client.read(count: message.utf8.count), as: UTF8.self), message)
        }
    }

    /// A protocol the route does not list, alone or beside one it does: the upstream (the echo
    /// server, which would switch) sees a plain GET and answers it.
    func testOtherProtocolsArriveAsPlainRequests() throws {
        let echo = try startEcho()
        let proxy = try proxy(upgrades: "[\"websocket\", \"my-proto\"]", to: echo.endpoint)
        let client = try connect(proxy)
        for offer in ["other-proto", "my-proto, other-proto", "websocket, TLS/1.2"] {
            let r = try client.exchange(upgradeRequest(offer))
            XCTAssertEqual(r.status, 200, offer)
            let seen = try r.echo()
            XCTAssertFalse(seen.has("Upgrade"), "\(offer): \(seen.headers)")
            XCTAssertFalse(seen.headers(named: "Connection").contains { $0.lowercased().contains("upgrade") }, offer)
        }
    }

    func testEmptyListTurnsWebSocketIntoPlainRequest() throws {
        let echo = try startEcho()
        let proxy = try proxy(upgrades: "[]", to: echo.endpoint)
        let client = try connect(proxy)
        let r = try client.exchange(upgradeRequest("websocket"))
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(try r.echo().has("Upgrade"))
    }

    /// An upstream that answers 101 to anything: a protocol the route does not allow reaches it
    /// without Upgrade, and its 101 is a 502 to the client, not a tunnel.
    func testSwitchNobodyAskedForIsRefused() throws {
        let server = try startServerSwitchingToAnything("other-proto")
        let proxy = try proxy(upgrades: "[\"my-proto\"]", to: "127.0.0.1:\(server.port)")
        let client = try connect(proxy)
        try client.send(upgradeRequest("other-proto"))
        XCTAssertEqual(try client.readResponse().status, 502, "a 101 to a request that asked for no switch")
        let seen = server.recordedHeads
        XCTAssertEqual(seen.count, 1)
        XCTAssertFalse(seen.first?.lowercased().contains("upgrade") ?? true, seen.first ?? "")
    }
}
