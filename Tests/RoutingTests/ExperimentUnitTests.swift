// Experiment units in the router: version-2 cookies (written, read, upgraded from version 1
// without moving the bucket), units for keyed users as a keyed hash, pinned users keeping a unit,
// and goal requests on other routes attributed to the unit's variant.
import Crypto
import Routing
import XCTest

final class ExperimentUnitTests: XCTestCase {
    private let key = UnitKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908)

    private func experimentSnapshot(sticky st: Sticky = sticky(), rules: [Rule] = [],
                                    goals: [ExperimentGoal] = [ExperimentGoal(name: "buy", methods: [b("POST")], pathPrefix: b("/buy"))])
        -> Snapshot {
        var s = split([50, 50], rules: rules, sticky: st)
        s.experiment = Experiment(name: "exp", unitKey: key, goals: goals)
        return snapshot([
            route("buy", match: Match(pathPrefix: b("/buy"))),
            route("shop", target: .split(s)),
        ])
    }

    private func setCookie(_ snap: Snapshot, _ d: Decision) -> String {
        var out = [UInt8](repeating: 0, count: Sticky.maxSetCookieBytes)
        let n = out.withUnsafeMutableBytes { snap.writeSetCookie(for: d, secure: true, into: $0) }
        return String(decoding: out[0..<n], as: UTF8.self)
    }

    private func cookie(of line: String) -> String {
        String(line.dropFirst("Set-Cookie: sy_checkout=".count).prefix { $0 != ";" })
    }

    func testANewUserGetsAUnitInAVersion2Cookie() {
        let snap = experimentSnapshot()
        let d = decide(snap, TestRequest(path: "/"), random: 7)
        XCTAssertTrue(d.newUnit)
        XCTAssertTrue(d.setCookie)
        XCTAssertNotEqual(d.unit, 0)
        let value = cookie(of: setCookie(snap, d))
        let hex = String(d.unit, radix: 16)
        XCTAssertEqual(value, "2.\(d.bucket).4db95739.\(String(repeating: "0", count: 16 - hex.count) + hex)")
        // Coming back with it: the same unit and bucket, nothing set.
        let back = decide(snap, TestRequest(path: "/", cookies: [("sy_checkout", value)]), random: 99)
        XCTAssertEqual(back.unit, d.unit)
        XCTAssertEqual(back.bucket, d.bucket)
        XCTAssertFalse(back.newUnit)
        XCTAssertFalse(back.setCookie)
    }

    func testAVersion1CookieIsUpgradedWithoutMovingItsBucket() {
        let snap = experimentSnapshot()
        for bucket: Int32 in [0, 42, 4_999, 5_000, 9_999] {
            let d = decide(snap, TestRequest(path: "/", cookies: [("sy_checkout", "1.\(bucket).4db95739")]), random: UInt64(bucket) &+ 5)
            XCTAssertEqual(d.bucket, bucket)
            XCTAssertTrue(d.newUnit)
            XCTAssertTrue(d.setCookie)
            XCTAssertTrue(cookie(of: setCookie(snap, d)).hasPrefix("2.\(bucket).4db95739."))
        }
    }

    func testSignedVersion2CookiesCarryTheBucketsSignature() {
        let signer = HMACSHA256.signer(secret: Array("a secret of sixteen bytes or more".utf8))
        let st = sticky(signer: signer)
        let snap = experimentSnapshot(sticky: st)
        let d = decide(snap, TestRequest(path: "/"), random: 11)
        let value = cookie(of: setCookie(snap, d))
        let parts = value.split(separator: ".")
        XCTAssertEqual(parts.count, 5)
        XCTAssertEqual(String(parts[4]), cookieValue(st, bucket: d.bucket).split(separator: ".")[3].description,
                       "the signature of the bucket and salt, as in version 1")
        let back = decide(snap, TestRequest(path: "/", cookies: [("sy_checkout", value)]), random: 12)
        XCTAssertEqual(back.unit, d.unit)
        XCTAssertFalse(back.setCookie)
        // Another bucket under the same signature: refused, a new unit and bucket.
        let forged = "2.\(d.bucket == 0 ? 1 : 0).4db95739.\(parts[3]).\(parts[4])"
        let f = decide(snap, TestRequest(path: "/", cookies: [("sy_checkout", forged)]), random: 13)
        XCTAssertTrue(f.newUnit)
        XCTAssertNotEqual(f.unit, d.unit)
    }

    func testMalformedVersion2CookiesAreReplaced() {
        let snap = experimentSnapshot()
        for bad in ["2.5.4db95739", "2.5.4db95739.", "2.5.4db95739.0123456789abcde", "2.5.4db95739.0123456789abcdeF",
                    "2.5.4db95739.0000000000000000", "2.5.4db95739.0123456789abcdef0", "2.5.4db95739.0123456789abcdef.x",
                    "3.5.4db95739.0123456789abcdef"] {
            let d = decide(snap, TestRequest(path: "/", cookies: [("sy_checkout", bad)]), random: 3)
            XCTAssertTrue(d.newUnit, bad)
            XCTAssertTrue(d.setCookie, bad)
        }
    }

    func testAKeyedUnitIsTheKeysSipHashNotTheKey() {
        let snap = experimentSnapshot(sticky: sticky(key: .header(b("x-user"))))
        let d1 = decide(snap, TestRequest(path: "/", headers: [("X-User", "alice@example.com")]), random: 1)
        let d2 = decide(snap, TestRequest(path: "/", headers: [("X-User", "alice@example.com")]), random: 2)
        let other = decide(snap, TestRequest(path: "/", headers: [("X-User", "bob@example.com")]), random: 1)
        XCTAssertTrue(d1.keyedUnit)
        XCTAssertFalse(d1.newUnit)
        XCTAssertEqual(d1.unit, d2.unit, "the same on every request and instance")
        XCTAssertNotEqual(d1.unit, other.unit)
        let expected = Array("alice@example.com".utf8).withUnsafeBytes { SipHashReference.hash(k0: key.k0, k1: key.k1, $0) }
        XCTAssertEqual(d1.unit, expected)
    }

    func testAPinnedUserStillGetsAUnitAndABucket() {
        let rule = Rule(source: .cookie(name: b("beta"), value: b("1")), variant: 0)
        let snap = experimentSnapshot(rules: [rule])
        let d = decide(snap, TestRequest(path: "/", cookies: [("beta", "1")]), random: 77)
        XCTAssertEqual(d.variant, 0)
        XCTAssertNotEqual(d.unit, 0)
        XCTAssertTrue(d.setCookie)
        XCTAssertGreaterThanOrEqual(d.bucket, 0)
    }

    func testAGoalOnAnotherRouteIsAttributedToTheUnitsVariant() {
        let snap = experimentSnapshot()
        let first = decide(snap, TestRequest(path: "/"), random: 5)
        let value = cookie(of: setCookie(snap, first))
        let goal = decide(snap, TestRequest("POST", path: "/buy/now", cookies: [("sy_checkout", value)]), random: 6)
        XCTAssertEqual(goal.route, 0, "served by the buy route")
        XCTAssertEqual(goal.goalHits.count, 1)
        XCTAssertEqual(goal.goalHits[0].unit, first.unit)
        XCTAssertEqual(goal.goalHits[0].variant, Int32(first.variant))
        XCTAssertEqual(goal.goalHits[0].goals, 1)
        XCTAssertTrue(snap.goalConverts(0, status: 201))
        XCTAssertFalse(snap.goalConverts(0, status: 302))
        // Not the goal's method, or no unit: nothing.
        XCTAssertEqual(decide(snap, TestRequest("GET", path: "/buy", cookies: [("sy_checkout", value)]), random: 6).goalHits.count, 0)
        XCTAssertEqual(decide(snap, TestRequest("POST", path: "/buy"), random: 6).goalHits.count, 0)
        // A version-1 cookie has no unit yet: not attributed.
        XCTAssertEqual(decide(snap, TestRequest("POST", path: "/buy", cookies: [("sy_checkout", "1.5.4db95739")]), random: 6)
            .goalHits.count, 0)
    }

    func testTheLongestVersion2LineFitsTheConstant() {
        let signer = HMACSHA256.signer(secret: Array("a secret of sixteen bytes or more".utf8))
        var s = split([50, 50], sticky: Sticky(cookieName: Array(repeating: UInt8(ascii: "n"), count: Sticky.maxCookieNameBytes),
                                               maxAgeSeconds: Int.max, key: nil, salt: b("s"), signer: signer))
        s.experiment = Experiment(name: "exp", unitKey: key)
        let snap = snapshot([route("shop", target: .split(s))])
        var d = decide(snap, TestRequest(path: "/"), random: 5)
        d.bucket = 9_999
        var out = [UInt8](repeating: 0, count: Sticky.maxSetCookieBytes)
        XCTAssertEqual(out.withUnsafeMutableBytes { snap.writeSetCookie(for: d, secure: true, into: $0) }, Sticky.maxSetCookieBytes)
        var short = [UInt8](repeating: 0, count: Sticky.maxSetCookieBytes - 1)
        XCTAssertEqual(short.withUnsafeMutableBytes { snap.writeSetCookie(for: d, secure: true, into: $0) }, 0)
    }
}

/// SipHash-2-4 written plainly from the paper, to check the router uses the experiment's key.
enum SipHashReference {
    static func hash(k0: UInt64, k1: UInt64, _ m: UnsafeRawBufferPointer) -> UInt64 {
        var v0 = k0 ^ 0x736f_6d65_7073_6575, v1 = k1 ^ 0x646f_7261_6e64_6f6d
        var v2 = k0 ^ 0x6c79_6765_6e65_7261, v3 = k1 ^ 0x7465_6462_7974_6573
        func round() {
            v0 = v0 &+ v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0; v0 = (v0 << 32) | (v0 >> 32)
            v2 = v2 &+ v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2
            v0 = v0 &+ v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0
            v2 = v2 &+ v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2; v2 = (v2 << 32) | (v2 >> 32)
        }
        var i = 0
        while i + 8 <= m.count {
            var w: UInt64 = 0
            for j in 0..<8 { w |= UInt64(m[i + j]) << UInt64(8 * j) }
            v3 ^= w; round(); round(); v0 ^= w
            i += 8
        }
        var last = UInt64(m.count & 0xff) << 56
        for j in 0..<(m.count - i) { last |= UInt64(m[i + j]) << UInt64(8 * j) }
        v3 ^= last; round(); round(); v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}
