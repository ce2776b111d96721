// What cookie rules cost per request: 2,000 cookie rules against a 15 KB Cookie header, the
// shape that once took 54 ms of event-loop CPU per request. Prints the time per decision (for
// the README and before/after comparisons); asserts only the outcome, never a duration.
import Dispatch
import Routing
import XCTest

final class CookieScanCostTests: XCTestCase {
    func testTwoThousandCookieRulesAgainstA15KBCookie() {
        let rules = (0..<2_000).map { Rule(source: .cookie(name: b("rule\($0)"), value: b("on")), variant: 1) }
        let s = split([90, 10], rules: rules, sticky: sticky())
        let snap = snapshot([route(target: .split(s))])
        // ~15 KB of cookies, none of which any rule names; the last one pins.
        var cookies = (0..<600).map { ("c\($0)", String(repeating: "x", count: 20)) }
        cookies.append(("rule1999", "on"))
        let request = TestRequest(cookies: cookies)
        let rounds = 5
        var d = Decision()
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<rounds { d = decide(snap, request, random: UInt64(i)) }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        XCTAssertEqual(d.variant, 1)
        print("cookie rules: 2000 rules, \(cookies.reduce(0) { $0 + $1.0.count + $1.1.count + 3 }) byte Cookie: "
              + "\(elapsed / UInt64(rounds) / 1_000) µs per decision")
    }
}

/// The one Cookie scan keeps what the per-rule scans meant: the first rule in config order wins
/// (header and cookie rules interleaved), any value of a repeated cookie can match, the key
/// cookie is its first non-empty value and the assignment cookie its first valid one.
final class CookieScanTests: XCTestCase {
    func testRuleOrderAndRepeatedCookies() {
        let rules = [
            Rule(source: .cookie(name: b("a"), value: b("1")), variant: 0),
            Rule(source: .header(name: b("x-h"), value: b("on")), variant: 1),
            Rule(source: .cookie(name: b("b"), value: b("2")), variant: 2),
            Rule(source: .cookie(name: b("a"), value: b("1")), variant: 2),   // shadowed by rule 0
            Rule(source: .cookie(name: b("a"), value: b("3")), variant: 1),
        ]
        let snap = snapshot([route(target: .split(split([1, 1, 1], rules: rules, sticky: sticky())))])
        let cases: [(name: String, request: TestRequest, variant: Int)] = [
            ("first cookie rule", TestRequest(cookies: [("b", "2"), ("a", "1")]), 0),
            ("header rule before a later cookie rule", TestRequest(headers: [("x-h", "on")], cookies: [("b", "2")]), 1),
            ("cookie rule before a header rule", TestRequest(headers: [("x-h", "on")], cookies: [("a", "1")]), 0),
            ("repeated cookie, second value matches", TestRequest(cookies: [("a", "9"), ("a", "3")]), 1),
            ("two Cookie headers", TestRequest(headers: [("cookie", "z=1"), ("cookie", "b=2")]), 2),
            ("value compared exactly", TestRequest(headers: [("cookie", "a=1 ; b= 2")]), 0),
        ]
        for c in cases {
            XCTAssertEqual(decide(snap, c.request, random: 1).variant, c.variant, c.name)
        }
        // No rule matches: not pinned, so a fresh bucket and a new cookie, as without cookies.
        let unmatched = decide(snap, TestRequest(cookies: [("a", "2"), ("c", "1")]), random: 1)
        let bare = decide(snap, TestRequest(), random: 1)
        XCTAssertTrue((0..<10_000).contains(unmatched.bucket), "pinned or out of range: bucket \(unmatched.bucket)")
        XCTAssertEqual(unmatched.bucket, bare.bucket)
        XCTAssertEqual(unmatched.variant, bare.variant)
        XCTAssertTrue(unmatched.setCookie)
    }

    func testKeyAndAssignmentCookies() {
        let st = sticky(key: .cookie(b("session")))
        let snap = snapshot([route(target: .split(split([50, 50], sticky: st)))])
        let keyed = decide(snap, TestRequest(cookies: [("session", ""), ("session", "alice")]), random: 1)
        XCTAssertEqual(keyed.bucket, st.stableBucket(key: UnsafeRawBufferPointer(start: "alice", count: 5)))
        let valid = cookieValue(st, bucket: 1234)
        let assigned = decide(snap, TestRequest(cookies: [("sy_checkout", "junk"), ("sy_checkout", valid)]), random: 1)
        XCTAssertEqual(assigned.bucket, 1234)
        XCTAssertFalse(assigned.setCookie)
    }
}
