// Weighted splits through the real proxy: new users are shared out by weight, each variant owns
// a consecutive bucket range in config order, and a weight-0 variant gets no new users.
import XCTest

final class SplitTests: EndToEndTestCase {
    /// Starts `stable` and `canary` echoes and a proxy whose route `shop` splits between them.
    private func startSplit(weights: (Int, Int), sticky: Bool) throws -> RunningProxy {
        let stable = try startEcho(name: "stable")
        let canary = try startEcho(name: "canary")
        let route = """
            { "name": "shop",
              "split": [ { "variant": "stable", "upstream": "stable", "weight": \(weights.0) },
                         { "variant": "canary", "upstream": "canary", "weight": \(weights.1) } ]
              \(sticky ? ", \"sticky\": {}" : "") }
            """
        return try startProxy(json: routingConfig(upstreams: [("stable", pool(stable.endpoint)), ("canary", pool(canary.endpoint))],
                                                  routes: [route]))
    }

    func testNewUsersAreSharedOutByWeight() throws {
        let proxy = try startSplit(weights: (90, 10), sticky: true)
        let count = 20_000
        let responses = try sendMany(proxy, count: count, connections: 4) { _ in get("/?bytes=0") }
        var canary = 0
        var wrongHeader = 0
        var wrongRange = 0
        for r in responses {
            XCTAssertEqual(r.status, 200)
            let variant = r.header("X-Switchyard-Variant")
            // The variant header names the upstream that served.
            if variant != r.header("X-Echo-Name") { wrongHeader += 1 }
            guard let cookie = setCookieValue(r, named: "sy-shop"), let bucket = cookieBucket(cookie) else {
                XCTFail("a new user gets an assignment cookie: \(r.headers)")
                break
            }
            // stable owns [0, 9000), canary [9000, 10000).
            if variant != (bucket < 9000 ? "stable" : "canary") { wrongRange += 1 }
            if variant == "canary" { canary += 1 }
        }
        XCTAssertEqual(wrongHeader, 0)
        XCTAssertEqual(wrongRange, 0, "responses whose variant does not own their cookie's bucket")
        let share = Double(canary) * 100 / Double(count)
        XCTAssertEqual(share, 10, accuracy: 1, "canary share over \(count) new users")
    }

    func testSplitWithoutStickyDrawsEveryRequestAndSetsNoCookie() throws {
        let proxy = try startSplit(weights: (80, 20), sticky: false)
        let count = 10_000
        let responses = try sendMany(proxy, count: count, connections: 4) { _ in get("/?bytes=0") }
        let canary = responses.filter { $0.header("X-Echo-Name") == "canary" }.count
        // 5 standard deviations: sqrt(0.8 * 0.2 / 10,000) is 0.4 points.
        XCTAssertEqual(Double(canary) * 100 / Double(count), 20, accuracy: 2)
        XCTAssertTrue(responses.allSatisfy { $0.status == 200 && $0.headers(named: "Set-Cookie").isEmpty })
    }

    func testVariantHeaderIsOnlyForSplitsAndCanBeRenamedOrTurnedOff() throws {
        let stable = try startEcho(name: "stable")
        let split = #""split": [ { "variant": "only", "upstream": "stable", "weight": 1 } ]"#
        let proxy = try startProxy(json: routingConfig(upstreams: [("stable", pool(stable.endpoint))], routes: [
            #"{ "name": "plain", "match": { "pathPrefix": "/plain" }, "upstream": "stable" }"#,
            #"{ "name": "renamed", "match": { "pathPrefix": "/renamed" }, "variantHeader": "X-Served-By", \#(split) }"#,
            #"{ "name": "quiet", "match": { "pathPrefix": "/quiet" }, "variantHeader": null, \#(split) }"#,
            #"{ "name": "default", \#(split) }"#,
        ]))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).header("X-Switchyard-Variant"), "only")
        XCTAssertNil(try client.exchange(get("/plain")).header("X-Switchyard-Variant"), "a plain upstream route has no variant")
        let renamed = try client.exchange(get("/renamed"))
        XCTAssertEqual(renamed.header("X-Served-By"), "only")
        XCTAssertNil(renamed.header("X-Switchyard-Variant"))
        XCTAssertNil(try client.exchange(get("/quiet")).header("X-Switchyard-Variant"))
    }

    func testWeightZeroVariantGetsNoNewUsers() throws {
        let proxy = try startSplit(weights: (100, 0), sticky: true)
        let responses = try sendMany(proxy, count: 2_000, connections: 2) { _ in get("/?bytes=0") }
        XCTAssertTrue(responses.allSatisfy { $0.status == 200 && $0.header("X-Echo-Name") == "stable" })
    }
}
