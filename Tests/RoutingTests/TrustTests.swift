// Who may steer a request: the override and preview headers count only for trusted clients (by
// address or shared secret), a dark (weight-0) variant is reachable only that way, and the
// steering headers are known to the proxy so it never forwards them.
import Routing
import XCTest

final class TrustTests: XCTestCase {
    private func sources(_ cidrs: [String]) -> AddressSet {
        guard case .success(let set) = AddressSet.parse(cidrs) else {
            XCTFail("\(cidrs) did not parse")
            return .nobody
        }
        return set
    }

    func testAddressParsing() {
        let valid: [(String, ClientAddress?)] = [
            ("127.0.0.1", ClientAddress("::ffff:127.0.0.1")),
            ("::1", ClientAddress("0:0:0:0:0:0:0:1")),
            ("[::1]", ClientAddress("::1")),
            ("fe80::1%eth0", ClientAddress("fe80::1")),
            ("2001:db8::", ClientAddress("2001:db8:0:0:0:0:0:0")),
        ]
        for (text, expected) in valid {
            let parsed = ClientAddress(text: Array(text.utf8))
            XCTAssertTrue(parsed.known, text)
            XCTAssertEqual(parsed, expected, text)
        }
        for text in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", ":::1", "1::2::3", "12345::", "::1:",
                     "g::1", "1:2:3:4:5:6:7:8:9", "localhost"] {
            XCTAssertFalse(ClientAddress(text: Array(text.utf8)).known, text.debugDescription)
        }
    }

    func testCIDRMatching() {
        let set = sources(["10.0.0.0/8", "127.0.0.1/32", "::1/128", "2001:db8::/32", "192.168.1.7"])
        let cases: [(String, Bool)] = [
            ("10.0.0.1", true), ("10.255.255.255", true), ("11.0.0.1", false), ("127.0.0.1", true), ("127.0.0.2", false),
            ("::1", true), ("::2", false), ("2001:db8:1::5", true), ("2001:db9::", false), ("192.168.1.7", true),
            ("192.168.1.8", false), ("::ffff:10.1.2.3", true),
            // An IPv4 prefix never matches a plain IPv6 address with the same low bits.
            ("::a00:1", false),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(set.contains(ClientAddress(text: Array(text.utf8))), expected, text)
        }
        XCTAssertFalse(set.contains(.unknown))
        XCTAssertTrue(sources(["0.0.0.0/0"]).contains(.unknown), "a /0 trusts every client")
        XCTAssertTrue(sources(["::/0"]).contains(ClientAddress(text: Array("2001:db8::1".utf8))))
        for bad in ["10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0/8", "host/8", "[::1]/128", "10.0.0.0/+8"] {
            guard case .failure(let error) = AddressSet.parse([bad]) else { return XCTFail("\(bad) parsed") }
            XCTAssertEqual(error.entry, bad)
        }
    }

    func testOverrideIsHonouredOnlyForTrustedRequests() {
        let trust = HeaderTrust(sources: sources(["10.0.0.0/8", "::1/128"]), secretHeader: b("x-switchyard-token"),
                                secret: b("s3cret"))
        // "canary" has weight 0: a dark variant.
        let snap = snapshot([route(target: .split(split([100, 0], overrideTrust: trust)))])
        let pin = ("X-Switchyard-Variant", "canary")
        let cases: [(name: String, request: TestRequest, client: String?, variant: Int)] = [
            ("unknown client", TestRequest(headers: [pin]), nil, 0),
            ("untrusted address", TestRequest(headers: [pin]), "203.0.113.9", 0),
            ("trusted IPv4", TestRequest(headers: [pin]), "10.20.30.40", 1),
            ("trusted IPv6", TestRequest(headers: [pin]), "::1", 1),
            ("secret", TestRequest(headers: [pin, ("X-Switchyard-Token", "s3cret")]), "203.0.113.9", 1),
            ("wrong secret", TestRequest(headers: [pin, ("X-Switchyard-Token", "s3cret!")]), "203.0.113.9", 0),
            ("empty secret", TestRequest(headers: [pin, ("X-Switchyard-Token", "")]), nil, 0),
            ("trusted, no override", TestRequest(), "10.0.0.1", 0),
        ]
        for c in cases {
            let client = c.client.map { ClientAddress(text: Array($0.utf8)) } ?? .unknown
            XCTAssertEqual(decide(snap, c.request, random: 3, client: client).variant, c.variant, c.name)
        }
        let closed = snapshot([route(target: .split(split([100, 0], overrideTrust: .nobody)))])
        XCTAssertEqual(decide(closed, TestRequest(headers: [pin]), random: 3, client: ClientAddress("10.0.0.1")!).variant, 0)
    }

    func testPreviewIsHonouredOnlyForTrustedRequests() {
        let trust = HeaderTrust(sources: sources(["127.0.0.1/32"]), secretHeader: b("x-token"), secret: b("t"))
        let snap = snapshot([route(target: .upstream(4))], live: .blue, previewTrust: trust)
        let preview = ("x-preview", "green")
        XCTAssertEqual(decide(snap, TestRequest(headers: [preview]), random: 0).color, .blue)
        XCTAssertEqual(decide(snap, TestRequest(headers: [preview]), random: 0, client: ClientAddress("192.0.2.1")!).color, .blue)
        XCTAssertEqual(decide(snap, TestRequest(headers: [preview]), random: 0, client: ClientAddress("127.0.0.1")!).color, .green)
        XCTAssertEqual(decide(snap, TestRequest(headers: [preview, ("x-token", "t")]), random: 0).color, .green)
        let closed = snapshot([route(target: .upstream(4))], live: .blue, previewTrust: .nobody)
        XCTAssertEqual(decide(closed, TestRequest(headers: [preview]), random: 0, client: ClientAddress("127.0.0.1")!).color, .blue)
    }

    func testSteeringHeadersAreKnown() {
        let trust = HeaderTrust(sources: .nobody, secretHeader: b("x-qa-token"), secret: b("t"))
        let snap = snapshot([route(target: .split(split([1, 1], overrideHeader: "x-qa", overrideTrust: trust)))],
                            previewHeader: "x-preview")
        for name in ["X-Switchyard-Variant", "x-switchyard-preview", "X-QA", "x-qa-token", "X-Preview"] {
            XCTAssertTrue(Array(name.utf8).withUnsafeBytes { snap.isSteeringHeader($0) }, name)
        }
        for name in ["x-qa-", "x-variant", "cookie", "X-Switchyard-Shadow"] {
            XCTAssertFalse(Array(name.utf8).withUnsafeBytes { snap.isSteeringHeader($0) }, name)
        }
    }
}
