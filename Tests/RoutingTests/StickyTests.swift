// Sticky assignment: key hashing vectors, the assignment cookie format and its strict parsing,
// signatures, and where the bucket comes from.
import Routing
import Crypto
import XCTest

final class StickyTests: XCTestCase {
    private let signer: CookieSigner = HMACSHA256.signer(secret: Array("s3cret".utf8))

    func testKeyHashVectors() {
        // FNV-1a 64 over "checkout" 0x00 key, mod 10000. Changing the algorithm moves every
        // keyed user, so these are fixed.
        let st = sticky(salt: "checkout")
        let vectors: [(key: String, bucket: Int32)] = [("user-1", 9386), ("alice", 1853), ("42", 9085)]
        for v in vectors {
            XCTAssertEqual(Array(v.key.utf8).withUnsafeBytes { st.stableBucket(key: $0) }, v.bucket, v.key)
        }
        XCTAssertNotEqual(Array("alice".utf8).withUnsafeBytes { sticky(salt: "search").stableBucket(key: $0) }, 1853)
    }

    func testSaltTagVectors() {
        XCTAssertEqual(sticky(salt: "").saltTag, 0x811c_9dc5)
        XCTAssertEqual(sticky(salt: "a").saltTag, 0xe40c_292c)
        XCTAssertEqual(sticky(salt: "checkout").saltTag, 0x4db9_5739)
        var st = sticky(salt: "a")
        st.salt = b("checkout")
        XCTAssertEqual(st.saltTag, 0x4db9_5739)
    }

    func testKeyFromHeaderOrCookieIsTheSourceOfTruth() {
        let byHeader = sticky(key: .header(b("x-user-id")))
        let byCookie = sticky(key: .cookie(b("uid")))
        let headerSnap = snapshot([route(target: .split(split([50, 50], sticky: byHeader)))])
        let cookieSnap = snapshot([route(target: .split(split([50, 50], sticky: byCookie)))])
        let other = cookieValue(byHeader, bucket: 100)
        let cases: [(snap: Snapshot, request: TestRequest, bucket: Int32?)] = [
            (headerSnap, TestRequest(headers: [("X-User-Id", "user-1")]), 9386),
            (headerSnap, TestRequest(headers: [("x-user-id", "alice")], cookies: [("sy_checkout", other)]), 1853),
            (cookieSnap, TestRequest(cookies: [("uid", "42")]), 9085),
            (cookieSnap, TestRequest(cookies: [("sy_checkout", other), ("uid", "alice")]), 1853),
        ]
        for (i, c) in cases.enumerated() {
            let d = decide(c.snap, c.request, random: 77)
            XCTAssertEqual(d.bucket, c.bucket, "case \(i)")
            XCTAssertEqual(d.variant, d.bucket < 5000 ? 0 : 1, "case \(i)")
            XCTAssertFalse(d.setCookie, "case \(i)")
        }
        // Without the key (or with an empty one) the assignment cookie, then a fresh bucket.
        XCTAssertEqual(decide(headerSnap, TestRequest(cookies: [("sy_checkout", other)]), random: 1).bucket, 100)
        XCTAssertFalse(decide(headerSnap, TestRequest(cookies: [("sy_checkout", other)]), random: 1).setCookie)
        let empty = decide(headerSnap, TestRequest(headers: [("x-user-id", "")]), random: 1)
        XCTAssertTrue(empty.setCookie)
        XCTAssertEqual(empty, decide(headerSnap, TestRequest(), random: 1))
    }

    /// A client-chosen key used to beat a valid signed cookie, so signing did not stop clients
    /// picking their bucket. Signed: the cookie wins by default, and a key-derived bucket is
    /// stored in the cookie; `preferCookie: false` (config `"prefer": "key"`) restores the key.
    func testSignedCookieWinsOverTheKeyByDefault() {
        let signed = sticky(key: .header(b("x-user-id")), signer: signer)
        XCTAssertTrue(signed.preferCookie)
        XCTAssertFalse(sticky(key: .header(b("x-user-id"))).preferCookie, "unsigned: the key wins, as before")
        let snap = snapshot([route(target: .split(split([50, 50], sticky: signed)))])
        let issued = cookieValue(signed, bucket: 7000)
        let picked = decide(snap, TestRequest(headers: [("x-user-id", "alice")], cookies: [("sy_checkout", issued)]), random: 1)
        XCTAssertEqual(picked.bucket, 7000, "the signed cookie wins over a chosen key")
        XCTAssertFalse(picked.setCookie)
        let first = decide(snap, TestRequest(headers: [("x-user-id", "alice")]), random: 1)
        XCTAssertEqual(first.bucket, signed.stableBucket(key: UnsafeRawBufferPointer(start: "alice", count: 5)))
        XCTAssertTrue(first.setCookie, "the key's bucket is stored so it sticks")
        let forged = decide(snap, TestRequest(headers: [("x-user-id", "alice")], cookies: [("sy_checkout", "1.7000.00000000")]), random: 1)
        XCTAssertEqual(forged.bucket, first.bucket, "an unsigned cookie is ignored")

        let keyFirst = sticky(key: .header(b("x-user-id")), signer: signer, preferCookie: false)
        let keySnap = snapshot([route(target: .split(split([50, 50], sticky: keyFirst)))])
        let d = decide(keySnap, TestRequest(headers: [("x-user-id", "alice")], cookies: [("sy_checkout", cookieValue(keyFirst, bucket: 7000))]),
                       random: 1)
        XCTAssertEqual(d.bucket, first.bucket)
        XCTAssertFalse(d.setCookie)
    }

    func testCookieFormat() {
        XCTAssertEqual(cookieValue(sticky(), bucket: 9500), "1.9500.4db95739")
        XCTAssertEqual(cookieValue(sticky(), bucket: 0), "1.0.4db95739")
        XCTAssertEqual(cookieValue(sticky(signer: signer), bucket: 9500),
                       "1.9500.4db95739.bIuyYZcO1ewt4O8GCa4_hQyJADch5yF2GxlZvZCRywo")
        XCTAssertEqual(cookieValue(sticky(), bucket: 10000), "")
        XCTAssertEqual(cookieValue(sticky(), bucket: -1), "")
    }

    func testValidCookies() {
        let st = sticky()
        for (value, bucket) in [("1.0.4db95739", Int32(0)), ("1.7.4db95739", 7), ("1.10.4db95739", 10), ("1.9999.4db95739", 9999)] {
            XCTAssertEqual(parse(st, value), bucket, value)
        }
    }

    func testMalformedCookiesAreRejected() {
        let unsigned = sticky()
        let signed = sticky(signer: signer)
        let good = "1.9500.4db95739.bIuyYZcO1ewt4O8GCa4_hQyJADch5yF2GxlZvZCRywo"
        XCTAssertEqual(parse(signed, good), 9500)
        let unsignedCases = [
            "", "1", "1.", "1.5", "1.5.", "2.5.4db95739", "0.5.4db95739", "11.5.4db95739", "01.5.4db95739",
            "1..4db95739", "1.x.4db95739", "1.5x.4db95739", "1.-5.4db95739", "1.+5.4db95739", "1. 5.4db95739",
            "1.10000.4db95739", "1.99999.4db95739", "1.123456789012.4db95739",
            "1.05.4db95739", "1.00.4db95739", "1.0009.4db95739",
            "1.5.4db9573", "1.5.4db957390", "1.5.4DB95739", "1.5.c87d8df5", "1.5..4db95739",
            "1.5.4db95739.", "1.5.4db95739.extra", "1.5.4db95739.1", " 1.5.4db95739", "1.5.4db95739 ",
            "1,5,4db95739", "1.5;4db95739",
            good,                                                    // signed cookie on an unsigned route
        ]
        for value in unsignedCases { XCTAssertNil(parse(unsigned, value), "unsigned route: \(value)") }

        var flipped = Array(good.utf8)
        flipped[20] = flipped[20] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let otherSecret = cookieValue(sticky(signer: HMACSHA256.signer(secret: Array("other".utf8))), bucket: 9500)
        let otherBucketSignature = String(cookieValue(signed, bucket: 9501).split(separator: ".")[3])
        let signedCases = [
            "1.9500.4db95739",                                       // unsigned cookie on a signed route
            "1.9500.4db95739.",
            good + "=",                                              // padding
            good + "A",                                              // 44 characters
            String(good.dropLast()),                                 // 42 characters
            "1.9500.4db95739.bIuyYZcO1ewt4O8GCa4/hQyJADch5yF2GxlZvZCRywo",   // base64, not base64url
            "1.9500.4db95739.bIuyYZcO1ewt4O8GCa4_hQyJADch5yF2GxlZvZCRyw!",   // not base64 at all
            "1.9500.4db95739.bIuyYZcO1ewt4O8GCa4_hQyJADch5yF2GxlZvZCRywp",   // non-canonical last character
            flipped.text,                                            // wrong signature
            otherSecret,                                             // signed with another secret
            "1.9500.4db95739." + otherBucketSignature,               // another bucket's signature
            "1.9501.4db95739." + String(good.split(separator: ".")[3]),
            "1.9500.c87d8df5." + String(good.split(separator: ".")[3]),   // other salt
            good + ".x",
        ]
        for value in signedCases { XCTAssertNil(parse(signed, value), "signed route: \(value)") }
    }

    func testSignatureRoundTrip() {
        let signed = sticky(signer: signer)
        for bucket: Int32 in [0, 1, 9, 10, 99, 100, 999, 1000, 4242, 9500, 9999] {
            let value = cookieValue(signed, bucket: bucket)
            XCTAssertEqual(value.count, value.split(separator: ".")[1].count + 2 + 1 + 8 + 1 + 43)
            XCTAssertEqual(parse(signed, value), bucket)
            XCTAssertNil(parse(sticky(salt: "other", signer: signer), value))
        }
    }

    func testBadCookiesAreReplacedNotErrors() {
        let st = sticky(signer: signer)
        let snap = snapshot([route(target: .split(split([95, 5], sticky: st)))])
        let fresh = decide(snap, TestRequest(), random: 12345)
        XCTAssertTrue(fresh.setCookie)
        XCTAssertTrue((0..<Split.buckets).contains(fresh.bucket))
        XCTAssertEqual(fresh.variant, fresh.bucket < 9500 ? 0 : 1)
        for value in ["", "garbage", "1.9500.4db95739", cookieValue(sticky(), bucket: 1), cookieValue(sticky(salt: "x", signer: signer), bucket: 1)] {
            let d = decide(snap, TestRequest(cookies: [("sy_checkout", value)]), random: 12345)
            XCTAssertEqual(d, fresh, value)
        }
        // A valid cookie among invalid ones with the same name is used.
        let valid = cookieValue(st, bucket: 9600)
        let d = decide(snap, TestRequest(cookies: [("sy_checkout", "bad"), ("sy_checkout", valid)]), random: 1)
        XCTAssertEqual(d.bucket, 9600)
        XCTAssertEqual(d.variant, 1)
        XCTAssertFalse(d.setCookie)
    }

    func testSetCookieLine() {
        let st = sticky()
        XCTAssertEqual(setCookie(st, bucket: 9500, secure: false),
                       "Set-Cookie: sy_checkout=1.9500.4db95739; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax\r\n")
        XCTAssertEqual(setCookie(st, bucket: 3, secure: true),
                       "Set-Cookie: sy_checkout=1.3.4db95739; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure\r\n")
        XCTAssertEqual(setCookie(sticky(signer: signer), bucket: 9500, secure: true),
                       "Set-Cookie: sy_checkout=1.9500.4db95739.bIuyYZcO1ewt4O8GCa4_hQyJADch5yF2GxlZvZCRywo; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure\r\n")
        XCTAssertEqual(setCookie(st, bucket: 10000, secure: false), "")
        // One byte short of the 90-byte line: nothing written.
        XCTAssertEqual(setCookie(st, bucket: 9500, secure: false, capacity: 89), "")
        XCTAssertEqual(setCookie(st, bucket: 9500, secure: false, capacity: 90).utf8.count, 90)

        // The constant covers the longest name, a signature, Secure and any Max-Age.
        let longest = Sticky(cookieName: Array(repeating: UInt8(ascii: "n"), count: Sticky.maxCookieNameBytes),
                             maxAgeSeconds: Int.max, key: nil, salt: b("s"), signer: signer)
        // Version 1 here; an experiment's version 2 adds ".<16 hex>" (ExperimentUnitTests).
        let line = setCookie(longest, bucket: 9999, secure: true, capacity: Sticky.maxSetCookieBytes)
        XCTAssertEqual(line.utf8.count + 17, Sticky.maxSetCookieBytes)
        XCTAssertEqual(setCookie(longest, bucket: 9999, secure: true, capacity: line.utf8.count - 1), "")
    }

    func testFreshBucketRoundTripsThroughSetCookie() {
        let st = sticky(signer: signer)
        let snap = snapshot([route(target: .split(split([50, 50], sticky: st)))])
        for random: UInt64 in [0, 1, 2, 0xdead_beef, .max] {
            let first = decide(snap, TestRequest(), random: random)
            XCTAssertTrue(first.setCookie)
            let line = setCookie(st, bucket: first.bucket, secure: false)
            let value = String(line.dropFirst("Set-Cookie: sy_checkout=".count).prefix { $0 != ";" })
            let again = decide(snap, TestRequest(cookies: [("sy_checkout", value)]), random: random &+ 1)
            XCTAssertEqual(again.bucket, first.bucket)
            XCTAssertEqual(again.variant, first.variant)
            XCTAssertFalse(again.setCookie)
        }
    }

    func testSignaturesAreHMACOfTheUnsignedValue() {
        // The signatures precomputed per bucket equal a direct HMAC-SHA256 of "1.<bucket>.<tag>".
        let secret = Array("s3cret".utf8)
        let signed = sticky(signer: HMACSHA256.signer(secret: secret))
        for bucket in stride(from: Int32(0), to: Split.buckets, by: 97) + [9999] {
            let unsigned = "1.\(bucket).4db95739"
            var mac = [UInt8](repeating: 0, count: 32)
            Array(unsigned.utf8).withUnsafeBytes { m in mac.withUnsafeMutableBytes { HMACSHA256.mac(key: secret, message: m, into: $0) } }
            XCTAssertEqual(cookieValue(signed, bucket: bucket), unsigned + "." + base64URL(mac))
        }
    }

    func testChangingSaltOrSignerReissuesCookies() {
        var st = sticky(salt: "a", signer: signer)
        let oldCookie = cookieValue(st, bucket: 42)
        st.salt = b("checkout")
        XCTAssertNil(parse(st, oldCookie))
        XCTAssertEqual(cookieValue(st, bucket: 42), "1.42.4db95739." + String(cookieValue(sticky(signer: signer), bucket: 42).split(separator: ".")[3]))
        let signedCookie = cookieValue(st, bucket: 42)
        st.signer = HMACSHA256.signer(secret: Array("rotated".utf8))
        XCTAssertNil(parse(st, signedCookie))
        XCTAssertEqual(parse(st, cookieValue(st, bucket: 42)), 42)
        st.signer = nil
        XCTAssertEqual(cookieValue(st, bucket: 42), "1.42.4db95739")
        XCTAssertNil(parse(st, signedCookie))
    }

    func testCookieHeaderParsing() {
        let st = sticky()
        let snap = snapshot([route(target: .split(split([50, 50], sticky: st)))])
        let value = cookieValue(st, bucket: 7000)
        let lines = [
            "sy_checkout=\(value)",
            "a=b;sy_checkout=\(value)",
            "  a = b ;  sy_checkout = \(value) ; c",
            "flag; sy_checkout=\(value);",
            "xsy_checkout=1.1.4db95739; sy_checkout=\(value)",
        ]
        for line in lines {
            let d = decide(snap, TestRequest(headers: [("Cookie", line)]), random: 5)
            XCTAssertEqual(d.bucket, 7000, line)
            XCTAssertFalse(d.setCookie, line)
        }
        // Two Cookie headers: the second is read too.
        let d = decide(snap, TestRequest(headers: [("cookie", "a=b"), ("cookie", "sy_checkout=\(value)")]), random: 5)
        XCTAssertEqual(d.bucket, 7000)
        for line in ["sy_checkout", "sy_checkout=", "sy_checkout=\"\(value)\"", "SY_CHECKOUT=\(value)", "xsy_checkout=\(value)"] {
            XCTAssertTrue(decide(snap, TestRequest(headers: [("Cookie", line)]), random: 5).setCookie, line)
        }
    }

    func testSnapshotWritesTheDecisionsSetCookie() {
        let st = sticky(signer: signer)
        let snap = snapshot([
            route("sticky", match: Match(pathPrefix: b("/s")), target: .split(split([95, 5], sticky: st))),
            route("plain-split", match: Match(pathPrefix: b("/p")), target: .split(split([95, 5]))),
            route("upstream"),
        ])
        let d = decide(snap, TestRequest(path: "/s"), random: 31)
        XCTAssertTrue(d.setCookie)
        var out = [UInt8](repeating: 0, count: Sticky.maxSetCookieBytes)
        let n = out.withUnsafeMutableBytes { snap.writeSetCookie(for: d, secure: true, into: $0) }
        XCTAssertEqual(String(decoding: out[0..<n], as: UTF8.self), setCookie(st, bucket: d.bucket, secure: true))
        for path in ["/p", "/other", "/none"] {
            let other = decide(snap, TestRequest(path: path), random: 31)
            XCTAssertFalse(other.setCookie)
            XCTAssertEqual(out.withUnsafeMutableBytes { snap.writeSetCookie(for: other, secure: true, into: $0) }, 0, path)
        }
    }

    private func setCookie(_ st: Sticky, bucket: Int32, secure: Bool, capacity: Int = Sticky.maxSetCookieBytes) -> String {
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { st.writeSetCookie(bucket: bucket, secure: secure, into: $0) }
        return String(decoding: out[0..<n], as: UTF8.self)
    }
}

/// Base64url without padding, written plainly for cross-checking.
private func base64URL(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    var bits = 0
    var value = 0
    var out = ""
    for byte in bytes {
        value = value << 8 | Int(byte)
        bits += 8
        while bits >= 6 {
            out.append(alphabet[(value >> (bits - 6)) & 63])
            bits -= 6
        }
    }
    if bits > 0 { out.append(alphabet[(value << (6 - bits)) & 63]) }
    return out
}
