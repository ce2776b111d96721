// Override and preview headers from the network: ignored unless the route or upstream opts in
// and the request is trusted (by source address or a shared secret), and never forwarded to the
// upstream.
import XCTest

final class SteeringHeadersTests: EndToEndTestCase {
    private var proxy: RunningProxy!
    private var secretPath = ""

    /// `/open`: a split with no override configured; `/lan`: override trusted from 10.0.0.0/8 only;
    /// `/qa`: override trusted with the secret in X-QA-Token. Each has a weight-0 `dark` variant.
    /// `/bg`: blue/green upstream `app` (live blue) whose preview trusts 10.0.0.0/8 only; `/bg2`:
    /// blue/green upstream `web` (live blue) with no preview configured.
    override func setUpWithError() throws {
        try super.setUpWithError()
        let stable = try startEcho(name: "stable")
        let dark = try startEcho(name: "dark")
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        secretPath = try writeFile("qa.secret", "let-me-in-0123456789\n")
        let split = """
            "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                       { "variant": "dark", "upstream": "dark", "weight": 0 } ]
            """
        let colors = #""blue": { "endpoints": ["\#(blue.endpoint)"] }, "green": { "endpoints": ["\#(green.endpoint)"] }, "live": "blue""#
        let routes = [
            #"{ "name": "open", "match": { "pathPrefix": "/open" }, \#(split) }"#,
            #"{ "name": "lan", "match": { "pathPrefix": "/lan" }, "override": { "trustedSources": ["10.0.0.0/8"] }, \#(split) }"#,
            #"{ "name": "local", "match": { "pathPrefix": "/local" }, "override": { "trustedSources": ["127.0.0.1/32", "::1/128"] }, \#(split) }"#,
            #"{ "name": "qa", "match": { "pathPrefix": "/qa" }, "override": { "secretHeader": "X-QA-Token", "secretFile": "\#(secretPath)" }, \#(split) }"#,
            #"{ "name": "bg", "match": { "pathPrefix": "/bg/" }, "upstream": "app" }"#,
            #"{ "name": "bg2", "match": { "pathPrefix": "/bg2" }, "upstream": "web" }"#,
        ]
        proxy = try startProxy(json: routingConfig(
            upstreams: [("stable", pool(stable.endpoint)), ("dark", pool(dark.endpoint)),
                        ("app", #"{ \#(colors), "preview": { "trustedSources": ["10.0.0.0/8"] } }"#),
                        ("web", #"{ \#(colors) }"#)],
            routes: routes, admin: true))
    }

    private func serve(_ path: String, _ extra: [String], file: StaticString = #filePath, line: UInt = #line) throws -> EchoReport {
        let r = try connect(proxy).exchange(get(path, extra))
        XCTAssertEqual(r.status, 200, r.bodyText, file: file, line: line)
        return try r.echo()
    }

    private func assertNoSteeringHeaders(_ report: EchoReport, file: StaticString = #filePath, line: UInt = #line) {
        for name in ["X-Switchyard-Variant", "X-Switchyard-Preview", "X-QA-Token"] {
            XCTAssertNil(report.header(name), "\(name) reached the upstream", file: file, line: line)
        }
    }

    func testOverrideIsIgnoredByDefaultAndNotForwarded() throws {
        let r = try serve("/open", ["X-Switchyard-Variant: dark"])
        XCTAssertEqual(r.name, "stable", "an untrusted client pinned the dark variant")
        assertNoSteeringHeaders(r)
    }

    func testOverrideFromAnUntrustedSourceIsIgnored() throws {
        let r = try serve("/lan", ["X-Switchyard-Variant: dark"])
        XCTAssertEqual(r.name, "stable")
        assertNoSteeringHeaders(r)
    }

    /// An ignored override or preview header is counted per route, so that a newcomer can see
    /// why it "does nothing"; a trusted one and a header naming no variant are not.
    func testIgnoredSteeringHeadersAreCounted() throws {
        _ = try serve("/lan", ["X-Switchyard-Variant: dark"])
        _ = try serve("/lan", ["X-Switchyard-Variant: dark"])
        _ = try serve("/lan", ["X-Switchyard-Variant: nosuch"])
        _ = try serve("/local", ["X-Switchyard-Variant: dark"])
        _ = try serve("/bg/x", ["X-Switchyard-Preview: green"])
        let m = try waitForMetrics(adminPort: try adminPort(proxy)) {
            $0[#"switchyard_untrusted_steering_headers_total{route="lan"}"#] == 2
        }
        XCTAssertEqual(m[#"switchyard_untrusted_steering_headers_total{route="local"}"#], 0, "trusted: not ignored")
        XCTAssertEqual(m[#"switchyard_untrusted_steering_headers_total{route="bg"}"#], 1, m.text)
    }

    /// The client's own address decides: this test's loopback client is trusted on `/local`.
    func testOverrideFromATrustedSourceReachesTheDarkVariant() throws {
        let r = try serve("/local", ["X-Switchyard-Variant: dark"])
        XCTAssertEqual(r.name, "dark", "a client from a trusted source pins the dark variant")
        assertNoSteeringHeaders(r)
        XCTAssertEqual(try serve("/local", []).name, "stable", "weight 0 takes no one without the header")
    }

    func testOverrideWithTheSecretReachesTheDarkVariant() throws {
        XCTAssertEqual(try serve("/qa", ["X-Switchyard-Variant: dark", "X-QA-Token: wrong"]).name, "stable")
        XCTAssertEqual(try serve("/qa", ["X-Switchyard-Variant: dark"]).name, "stable")
        let r = try serve("/qa", ["X-Switchyard-Variant: dark", "X-QA-Token: let-me-in-0123456789"])
        XCTAssertEqual(r.name, "dark")
        assertNoSteeringHeaders(r)
    }

    func testPreviewFromAnUntrustedClientServesTheLiveColor() throws {
        let restricted = try serve("/bg/", ["X-Switchyard-Preview: green"])
        XCTAssertEqual(restricted.name, "blue", "an untrusted client reached the idle color")
        assertNoSteeringHeaders(restricted)
        let unconfigured = try serve("/bg2", ["X-Switchyard-Preview: green"])
        XCTAssertEqual(unconfigured.name, "blue")
        assertNoSteeringHeaders(unconfigured)
    }
}
