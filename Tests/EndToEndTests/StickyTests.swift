// Sticky assignment through real proxies: a user keeps their variant on every request, raising
// the canary's weight only moves users from stable to canary, every instance with the same
// config agrees (by cookie, or by key header with no cookie at all), and signed cookies are
// accepted by every instance sharing the secret while tampered ones are replaced.
import Foundation
import XCTest

final class StickyTests: EndToEndTestCase {
    private var stable: EchoUpstream!
    private var canary: EchoUpstream!

    override func setUpWithError() throws {
        try super.setUpWithError()
        stable = try startEcho(name: "stable")
        canary = try startEcho(name: "canary")
    }

    /// A proxy whose route `shop` splits stable/canary by `weights`, with `sticky` as the
    /// route's sticky object.
    private func startShop(_ weights: (Int, Int), sticky: String = "{}", controlSocket: String? = nil) throws -> RunningProxy {
        let route = """
            { "name": "shop",
              "split": [ { "variant": "stable", "upstream": "stable", "weight": \(weights.0) },
                         { "variant": "canary", "upstream": "canary", "weight": \(weights.1) } ],
              "sticky": \(sticky) }
            """
        return try startProxy(json: routingConfig(upstreams: [("stable", pool(stable.endpoint)), ("canary", pool(canary.endpoint))],
                                                  routes: [route], controlSocket: controlSocket))
    }

    /// `users` new users on `proxy`: each one's cookie value and variant.
    private func newUsers(_ proxy: RunningProxy, _ users: Int, cookie: String = "sy-shop",
                          file: StaticString = #filePath, line: UInt = #line) throws -> [(cookie: String, variant: String)] {
        try sendMany(proxy, count: users) { _ in get("/?bytes=0") }.map { r in
            let value = setCookieValue(r, named: cookie)
            XCTAssertNotNil(value, "a new user gets a cookie: \(r.headers)", file: file, line: line)
            XCTAssertEqual(r.header("X-Switchyard-Variant"), r.header("X-Echo-Name"), file: file, line: line)
            return (value ?? "", r.header("X-Echo-Name") ?? "")
        }
    }

    func testStickyUsersNeverChangeVariant() throws {
        let proxy = try startShop((50, 50))
        let users = try newUsers(proxy, 400)
        XCTAssertGreaterThan(users.filter { $0.variant == "canary" }.count, 100)
        XCTAssertGreaterThan(users.filter { $0.variant == "stable" }.count, 100)
        let replays = 20
        let responses = try sendMany(proxy, count: users.count * replays) { i in
            withCookie(users[i % users.count].cookie)
        }
        var moved = 0
        var reissued = 0
        for (i, r) in responses.enumerated() {
            XCTAssertEqual(r.status, 200)
            if r.header("X-Echo-Name") != users[i % users.count].variant { moved += 1 }
            if !r.headers(named: "Set-Cookie").isEmpty { reissued += 1 }
        }
        XCTAssertEqual(moved, 0, "requests of returning users served by another variant")
        XCTAssertEqual(reissued, 0, "a valid cookie is not set again")
    }

    func testRaisingTheCanaryWeightMovesUsersOnlyIntoTheCanary() throws {
        let before = try startShop((90, 10))
        let users = try newUsers(before, 2_000)
        // The same route name (and so the same salt and cookie) with the canary at 50%.
        let after = try startShop((50, 50))
        let responses = try sendMany(after, count: users.count) { i in withCookie(users[i].cookie) }
        var stayedCanary = 0
        var movedToCanary = 0
        var movedToStable = 0
        for (user, r) in zip(users, responses) {
            XCTAssertEqual(r.status, 200)
            XCTAssertNil(setCookieValue(r, named: "sy-shop"), "the bucket is kept across the weight change")
            let now = r.header("X-Echo-Name")
            switch (user.variant, now) {
            case ("canary", "canary"): stayedCanary += 1
            case ("stable", "canary"): movedToCanary += 1
            case ("canary", _): movedToStable += 1
            default: break
            }
            // The bucket decides: canary owns [5000, 10000) now.
            if let bucket = cookieBucket(user.cookie) { XCTAssertEqual(now, bucket < 5000 ? "stable" : "canary") }
        }
        XCTAssertEqual(movedToStable, 0, "no canary user goes back to stable when the canary grows")
        XCTAssertEqual(stayedCanary, users.filter { $0.variant == "canary" }.count)
        // About 40% of all users: those in [5000, 9000).
        XCTAssertGreaterThan(movedToCanary, users.count / 4, "some stable users move into the canary")
    }

    func testRuntimeWeightChangeMovesUsersOnlyIntoTheCanary() throws {
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startShop((90, 10), controlSocket: socket)
        let users = try newUsers(proxy, 1_000)
        let ctl = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "set", "weights", "shop", "stable=50", "canary=50"])
        XCTAssertEqual(ctl.termination, .exited(0), ctl.stdout + ctl.stderr)
        let responses = try sendMany(proxy, count: users.count) { i in withCookie(users[i].cookie) }
        var movedToStable = 0
        var movedToCanary = 0
        for (user, r) in zip(users, responses) {
            XCTAssertNil(setCookieValue(r, named: "sy-shop"))
            if user.variant == "canary" && r.header("X-Echo-Name") != "canary" { movedToStable += 1 }
            if user.variant == "stable" && r.header("X-Echo-Name") == "canary" { movedToCanary += 1 }
        }
        XCTAssertEqual(movedToStable, 0, "no canary user goes back to stable")
        XCTAssertGreaterThan(movedToCanary, users.count / 4, "stable users in [5000, 9000) move into the canary")
    }

    func testRollbackToWeightZeroKeepsBucketsSoTheSameUsersReturn() throws {
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startShop((50, 50), controlSocket: socket)
        let users = try newUsers(proxy, 400)
        func setWeights(_ stable: Int, _ canary: Int) throws {
            let ctl = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "set", "weights", "shop",
                                                        "stable=\(stable)", "canary=\(canary)"])
            XCTAssertEqual(ctl.termination, .exited(0), ctl.stdout + ctl.stderr)
        }
        func replay() throws -> [String?] {
            try sendMany(proxy, count: users.count) { i in withCookie(users[i].cookie) }.map { r in
                XCTAssertNil(setCookieValue(r, named: "sy-shop"), "the cookie is kept, not reissued")
                return r.header("X-Echo-Name")
            }
        }
        try setWeights(100, 0)
        XCTAssertTrue(try replay().allSatisfy { $0 == "stable" }, "canary users fall through to the owner of their bucket")
        try setWeights(50, 50)
        XCTAssertEqual(try replay(), users.map(\.variant), "ramping back up returns the same users to the canary")
    }

    func testTwoInstancesAgreeOnEveryCookie() throws {
        let a = try startShop((70, 30))
        let b = try startShop((70, 30))
        let fromA = try newUsers(a, 1_000)
        let onB = try sendMany(b, count: fromA.count) { i in withCookie(fromA[i].cookie) }
        let fromB = try newUsers(b, 1_000)
        let onA = try sendMany(a, count: fromB.count) { i in withCookie(fromB[i].cookie) }
        for (users, responses) in [(fromA, onB), (fromB, onA)] {
            for (user, r) in zip(users, responses) {
                XCTAssertEqual(r.header("X-Echo-Name"), user.variant, "cookie \(user.cookie)")
                XCTAssertNil(setCookieValue(r, named: "sy-shop"), "cookie \(user.cookie) is valid on the other instance")
            }
        }
    }

    func testKeyHeaderAssignsTheSameVariantOnEveryInstanceWithoutACookie() throws {
        let sticky = #"{ "key": { "header": "X-User-Id" }, "salt": "exp-42" }"#
        let a = try startShop((80, 20), sticky: sticky)
        let b = try startShop((80, 20), sticky: sticky)
        let keys = (0..<1_000).map { "user-\($0 * 7919)" }
        let request: @Sendable (Int) -> String = { i in get("/?bytes=0", ["X-User-Id: \(keys[i])"]) }
        let onA = try sendMany(a, count: keys.count, request: request)
        let onB = try sendMany(b, count: keys.count, request: request)
        var canary = 0
        for (i, key) in keys.enumerated() {
            let expected = stickyKeyBucket(salt: "exp-42", key: key) < 8000 ? "stable" : "canary"
            XCTAssertEqual(onA[i].header("X-Echo-Name"), expected, key)
            XCTAssertEqual(onB[i].header("X-Echo-Name"), expected, key)
            XCTAssertTrue(onA[i].headers(named: "Set-Cookie").isEmpty, "a keyed request needs no cookie")
            if expected == "canary" { canary += 1 }
        }
        XCTAssertEqual(Double(canary) / Double(keys.count), 0.2, accuracy: 0.05)
        // The key wins over an assignment cookie that says otherwise.
        let key = keys.first { stickyKeyBucket(salt: "exp-42", key: $0) < 8000 }!
        let canaryCookie = try newUsers(a, 50).first { $0.variant == "canary" }?.cookie
        let client = try connect(a)
        let r = try client.exchange(get("/?bytes=0", ["X-User-Id: \(key)", "Cookie: sy-shop=\(try XCTUnwrap(canaryCookie))"]))
        XCTAssertEqual(r.header("X-Echo-Name"), "stable")
        // No key: the cookie, then a fresh bucket (with a cookie) as usual.
        let anonymous = try client.exchange(get("/?bytes=0"))
        XCTAssertNotNil(setCookieValue(anonymous, named: "sy-shop"))
    }

    func testKeyCookieAndAnEmptyKeyHeader() throws {
        let byCookie = try startShop((50, 50), sticky: #"{ "key": { "cookie": "uid" }, "salt": "s1" }"#)
        let client = try connect(byCookie)
        for user in (0..<40).map({ "u\($0)" }) {
            let r = try client.exchange(get("/?bytes=0", ["Cookie: lang=en; uid=\(user)"]))
            XCTAssertEqual(r.header("X-Echo-Name"), stickyKeyBucket(salt: "s1", key: user) < 5000 ? "stable" : "canary", user)
            XCTAssertTrue(r.headers(named: "Set-Cookie").isEmpty)
        }
        let byHeader = try startShop((50, 50), sticky: #"{ "key": { "header": "X-User-Id" } }"#)
        let empty = try connect(byHeader).exchange(get("/?bytes=0", ["X-User-Id: "]))
        XCTAssertNotNil(setCookieValue(empty, named: "sy-shop"), "an empty key is no key: the user is bucketed by cookie")
    }

    func testAssignmentCookieAttributes() throws {
        let proxy = try startShop((50, 50), sticky: #"{ "cookie": "exp", "maxAgeSeconds": 3600 }"#)
        let r = try connect(proxy).exchange(get("/?bytes=0"))
        let line = try XCTUnwrap(r.headers(named: "Set-Cookie").first)
        let value = try XCTUnwrap(setCookieValue(r, named: "exp"))
        XCTAssertEqual(line, "exp=\(value); Path=/; Max-Age=3600; HttpOnly; SameSite=Lax")
        let parts = value.split(separator: ".")
        XCTAssertEqual(parts.count, 3, "unsigned: 1.<bucket>.<tag>")
        XCTAssertEqual(parts.first, "1")
        XCTAssertEqual(parts.last?.count, 8)
        // Returning with it: no new cookie, same variant.
        let again = try connect(proxy).exchange(get("/?bytes=0", ["Cookie: exp=\(value)"]))
        XCTAssertTrue(again.headers(named: "Set-Cookie").isEmpty)
        XCTAssertEqual(again.header("X-Echo-Name"), r.header("X-Echo-Name"))
    }

    func testSignedCookieIsAcceptedByEveryInstanceWithTheSecretAndTamperingIsReplaced() throws {
        let secret = try writeFile("ab.secret", "correct horse battery staple\n")
        let other = try writeFile("other.secret", "a different secret\n")
        let a = try startShop((50, 50), sticky: #"{ "secretFile": "\#(secret)" }"#)
        let b = try startShop((50, 50), sticky: #"{ "secretFile": "\#(secret)" }"#)
        let c = try startShop((50, 50), sticky: #"{ "secretFile": "\#(other)" }"#)
        let users = try newUsers(a, 200)
        for user in users {
            XCTAssertEqual(user.cookie.split(separator: ".").count, 4, "signed: 1.<bucket>.<tag>.<sig>, got \(user.cookie)")
        }
        let onB = try sendMany(b, count: users.count) { i in withCookie(users[i].cookie) }
        for (user, r) in zip(users, onB) {
            XCTAssertEqual(r.header("X-Echo-Name"), user.variant)
            XCTAssertNil(setCookieValue(r, named: "sy-shop"), "same secret: \(user.cookie) is accepted")
        }
        // Another secret does not accept them.
        let onC = try sendMany(c, count: users.count) { i in withCookie(users[i].cookie) }
        XCTAssertTrue(onC.allSatisfy { setCookieValue($0, named: "sy-shop") != nil }, "another secret replaces every cookie")

        // Tampering: another bucket under the same signature, a changed signature, no signature.
        let client = try connect(b)
        for user in users.prefix(20) {
            let parts = user.cookie.split(separator: ".").map(String.init)
            let bucket = Int(parts[1])!
            let signature = parts[3]
            let flipped = (signature.first == "A" ? "B" : "A") + signature.dropFirst()
            let tampered = [
                "1.\((bucket + 5_000) % 10_000).\(parts[2]).\(signature)",
                "1.\(bucket).\(parts[2]).\(flipped)",
                "1.\(bucket).\(parts[2])",
            ]
            for value in tampered {
                let r = try client.exchange(withCookie(value))
                XCTAssertEqual(r.status, 200)
                let fresh = try XCTUnwrap(setCookieValue(r, named: "sy-shop"), "tampered \(value) is replaced")
                XCTAssertNotEqual(fresh, value)
                XCTAssertEqual(fresh.split(separator: ".").count, 4)
                // The variant served is the fresh cookie's, not the tampered one's.
                XCTAssertEqual(r.header("X-Echo-Name"), cookieBucket(fresh)! < 5000 ? "stable" : "canary")
            }
        }
    }

    func testCookieOfAnotherSaltIsReplaced() throws {
        let a = try startShop((50, 50))
        let b = try startShop((50, 50), sticky: #"{ "salt": "another-experiment" }"#)
        let users = try newUsers(a, 50)
        let onB = try sendMany(b, count: users.count) { i in withCookie(users[i].cookie) }
        for (user, r) in zip(users, onB) {
            let fresh = setCookieValue(r, named: "sy-shop")
            XCTAssertNotNil(fresh, "a cookie issued under another salt is stale: \(user.cookie)")
            XCTAssertNotEqual(fresh.flatMap { $0.split(separator: ".").dropFirst(2).first }, user.cookie.split(separator: ".")[2])
        }
    }
}

/// A returning user's request: the assignment cookie among other cookies.
private func withCookie(_ value: String, name: String = "sy-shop") -> String {
    get("/?bytes=0", ["Cookie: theme=dark; \(name)=\(value)"])
}
