// Pins through the real proxy: cookie and header rules, then the override header, pick the
// variant before any weight or sticky bucket does; an override naming no variant is ignored.
import XCTest

final class RulesTests: EndToEndTestCase {
    private var proxy: RunningProxy!

    /// Route `shop` sends every new user to stable (canary has weight 0, so only pins reach it);
    /// route `locked` (under /locked) has no override (it is opt-in); route `custom` (under
    /// /custom) takes its override from `X-Pick`.
    override func setUpWithError() throws {
        try super.setUpWithError()
        let stable = try startEcho(name: "stable")
        let canary = try startEcho(name: "canary")
        let split = """
            "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                       { "variant": "canary", "upstream": "canary", "weight": 0 } ],
            "rules": [ { "cookie": { "beta": "1" }, "variant": "canary" },
                       { "header": { "X-Beta": "yes" }, "variant": "canary" },
                       { "header": { "X-Beta": "no" }, "variant": "stable" } ],
            "sticky": {}
            """
        let everyone = #""trustedSources": ["0.0.0.0/0", "::/0"]"#
        let routes = [
            #"{ "name": "locked", "match": { "pathPrefix": "/locked" }, \#(split) }"#,
            #"{ "name": "custom", "match": { "pathPrefix": "/custom" }, "override": { "header": "X-Pick", \#(everyone) }, \#(split) }"#,
            #"{ "name": "shop", "override": { \#(everyone) }, \#(split) }"#,
        ]
        proxy = try startProxy(json: routingConfig(upstreams: [("stable", pool(stable.endpoint)), ("canary", pool(canary.endpoint))],
                                                   routes: routes))
    }

    /// The upstream that served `extra` headers on `path`, and whether a cookie was set.
    private func serve(_ extra: [String], path: String = "/", file: StaticString = #filePath,
                       line: UInt = #line) throws -> (upstream: String?, setCookie: Bool) {
        let r = try connect(proxy).exchange(get(path + "?bytes=0", extra))
        XCTAssertEqual(r.status, 200, file: file, line: line)
        XCTAssertEqual(r.header("X-Switchyard-Variant"), r.header("X-Echo-Name"), file: file, line: line)
        return (r.header("X-Echo-Name"), !r.headers(named: "Set-Cookie").isEmpty)
    }

    func testWithoutPinsEveryoneGetsTheWeightedVariant() throws {
        let r = try serve([])
        XCTAssertEqual(r.upstream, "stable")
        XCTAssertTrue(r.setCookie, "a new, unpinned user is bucketed and gets a cookie")
    }

    func testCookieRulePinsTheVariant() throws {
        XCTAssertEqual(try serve(["Cookie: beta=1"]).upstream, "canary")
        XCTAssertEqual(try serve(["Cookie: theme=dark; beta=1; lang=en"]).upstream, "canary", "among other cookies")
        XCTAssertEqual(try serve(["Cookie: theme=dark", "Cookie: beta=1"]).upstream, "canary", "in a second Cookie header")
        XCTAssertEqual(try serve(["Cookie: beta=2"]).upstream, "stable", "the value must match")
        XCTAssertEqual(try serve(["Cookie: xbeta=1"]).upstream, "stable", "the name must match")
        XCTAssertFalse(try serve(["Cookie: beta=1"]).setCookie, "a pinned request is not bucketed")
    }

    func testHeaderRulePinsTheVariant() throws {
        XCTAssertEqual(try serve(["X-Beta: yes"]).upstream, "canary")
        XCTAssertEqual(try serve(["x-beta: yes"]).upstream, "canary", "header names are case-insensitive")
        XCTAssertEqual(try serve(["X-Beta: YES"]).upstream, "stable", "values are compared exactly")
        XCTAssertFalse(try serve(["X-Beta: yes"]).setCookie)
    }

    func testRulesAreTriedInOrderAndBeatTheStickyCookie() throws {
        // A returning stable user: the cookie rule still wins.
        let first = try connect(proxy).exchange(get("/?bytes=0"))
        let cookie = try XCTUnwrap(setCookieValue(first, named: "sy-shop"))
        XCTAssertEqual(try serve(["Cookie: sy-shop=\(cookie); beta=1"]).upstream, "canary")
        // Both rules match: the first one listed wins.
        XCTAssertEqual(try serve(["Cookie: beta=1", "X-Beta: no"]).upstream, "canary")
        XCTAssertEqual(try serve(["X-Beta: no", "Cookie: beta=1"]).upstream, "canary")
    }

    func testOverrideHeaderPicksAVariant() throws {
        XCTAssertEqual(try serve(["X-Switchyard-Variant: canary"]).upstream, "canary")
        XCTAssertEqual(try serve(["X-Switchyard-Variant: stable", "Cookie: theme=dark"]).upstream, "stable")
        XCTAssertFalse(try serve(["X-Switchyard-Variant: canary"]).setCookie, "an overridden request is not bucketed")
        // Rules come before the override header.
        XCTAssertEqual(try serve(["X-Switchyard-Variant: stable", "Cookie: beta=1"]).upstream, "canary")
    }

    func testUnknownOverrideValueIsIgnored() throws {
        for value in ["bogus", "Canary", "canary2", ""] {
            let r = try serve(["X-Switchyard-Variant: \(value)"])
            XCTAssertEqual(r.upstream, "stable", "override \(value.debugDescription)")
            XCTAssertTrue(r.setCookie, "an ignored override leaves the request to the weights")
        }
    }

    func testOverrideHeaderCanBeRenamedOrTurnedOff() throws {
        XCTAssertEqual(try serve(["X-Pick: canary"], path: "/custom").upstream, "canary")
        XCTAssertEqual(try serve(["X-Switchyard-Variant: canary"], path: "/custom").upstream, "stable")
        XCTAssertEqual(try serve(["X-Switchyard-Variant: canary"], path: "/locked").upstream, "stable")
        XCTAssertEqual(try serve(["Cookie: beta=1"], path: "/locked").upstream, "canary", "rules still apply")
    }
}
