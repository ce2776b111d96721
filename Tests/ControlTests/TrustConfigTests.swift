// The config keys that decide whom Switchyard trusts: `override` and `preview` (opt-in, and
// never without a source list or a secret), `trustForwardedFrom`, sticky `prefer`, and the cap
// on rules per route.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class TrustConfigTests: XCTestCase {
    private let split = #""split": [{ "variant": "a", "upstream": "app", "weight": 1 }, { "variant": "dark", "upstream": "app", "weight": 0 }]"#

    func testOverrideIsOptInAndNeedsSourcesOrASecret() throws {
        assertError(Doc.route(split + #", "override": {}"#),
                    #"routes[0].override: needs "trustedSources" or "secretFile"/"secretEnv""#)
        assertError(Doc.route(split + #", "overrideHeader": "X-V""#), #"routes[0].overrideHeader: replaced by "override""#)
        assertError(Doc.route(split + #", "override": { "trustedSources": ["10.0.0.0/33"] }"#),
                    #"routes[0].override.trustedSources[0]: "10.0.0.0/33" is not a CIDR"#)
        assertError(Doc.route(split + #", "override": { "trustedSources": [], "secretHeader": "X-T" }"#),
                    #"routes[0].override: "secretHeader" needs "secretFile" or "secretEnv""#)
        let config = try XCTUnwrap(parse(Doc.route(split + #", "override": { "header": "X-QA", "trustedSources": ["10.0.0.0/8", "::1/128"] }"#))).config
        let route = try XCTUnwrap(config.routes.first)
        XCTAssertEqual(route.split?.overrideHeader, "X-QA")
        XCTAssertEqual(route.split?.overrideTrust.trustedSources, ["10.0.0.0/8", "::1/128"])

        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        let pin = Request(headers: [("x-qa", "dark")])
        XCTAssertEqual(decide(snapshot, pin, random: 1).variant, 0, "an unknown client is not trusted")
        XCTAssertEqual(decide(snapshot, pin, random: 1, client: ClientAddress("203.0.113.1")!).variant, 0)
        XCTAssertEqual(decide(snapshot, pin, random: 1, client: ClientAddress("10.9.8.7")!).variant, 1)
        XCTAssertEqual(decide(snapshot, pin, random: 1, client: ClientAddress("::1")!).variant, 1)
        XCTAssertTrue(Array("X-QA".utf8).withUnsafeBytes { snapshot.isSteeringHeader($0) })
    }

    func testOverrideBySecretHeader() throws {
        let secret = try TemporaryFile(contents: "let-me-in-0123456789\n", suffix: ".secret")
        defer { secret.remove() }
        let text = Doc.route(split + #", "override": { "secretHeader": "X-QA-Token", "secretFile": "\#(secret.path)" }"#)
        let config = try XCTUnwrap(parse(text)).config
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(decide(snapshot, Request(headers: [("x-switchyard-variant", "dark")]), random: 1).variant, 0)
        XCTAssertEqual(decide(snapshot, Request(headers: [("x-switchyard-variant", "dark"), ("x-qa-token", "nope")]), random: 1).variant, 0)
        XCTAssertEqual(decide(snapshot, Request(headers: [("x-switchyard-variant", "dark"), ("x-qa-token", "let-me-in-0123456789")]), random: 1).variant, 1)
        XCTAssertTrue(Array("x-qa-token".utf8).withUnsafeBytes { snapshot.isSteeringHeader($0) })
    }

    func testPreviewNeedsSourcesOrASecret() throws {
        let bare = #"""
        { "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": ["127.0.0.1:9002"] },
                   "live": "blue", "preview": { "header": "X-P" } } }
        """#
        assertError(Doc.make(upstreams: bare), #"upstreams.app.preview: needs "trustedSources""#)
        let trusted = bare.replacingOccurrences(of: #""header": "X-P""#, with: #""header": "X-P", "trustedSources": ["127.0.0.1"]"#)
        let config = try XCTUnwrap(parse(Doc.make(upstreams: trusted))).config
        XCTAssertEqual(config.upstreams[0].blueGreen?.previewTrust.trustedSources, ["127.0.0.1"])
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(decide(snapshot, Request(headers: [("x-p", "green")]), random: 1).color, .blue)
        XCTAssertEqual(decide(snapshot, Request(headers: [("x-p", "green")]), random: 1, client: ClientAddress("127.0.0.1")!).color, .green)
    }

    func testTrustForwardedFrom() throws {
        let config = try XCTUnwrap(parse(Doc.make(extra: #""trustForwardedFrom": ["10.0.0.0/8", "fd00::/8"]"#))).config
        XCTAssertEqual(config.trustForwardedFrom, ["10.0.0.0/8", "fd00::/8"])
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertTrue(snapshot.trustsForwardingHeaders(from: ClientAddress("10.1.1.1")!))
        XCTAssertTrue(snapshot.trustsForwardingHeaders(from: ClientAddress("fd12::1")!))
        XCTAssertFalse(snapshot.trustsForwardingHeaders(from: ClientAddress("127.0.0.1")!))
        let none = try SnapshotBuilder.build(XCTUnwrap(parse(Doc.make())).config, version: 1, registry: EndpointRegistry())
        XCTAssertFalse(none.trustsForwardingHeaders(from: ClientAddress("127.0.0.1")!), "by default nobody is trusted")
        assertError(Doc.make(extra: #""trustForwardedFrom": ["10.0.0.0/8", "nope"]"#),
                    #"trustForwardedFrom[1]: "nope" is not a CIDR"#)
    }

    func testStickyPrefer() throws {
        for (value, expected) in [("cookie", Config.StickyPreference.cookie), ("key", .key)] {
            let config = try XCTUnwrap(parse(Doc.route(split + #", "sticky": { "key": { "header": "X-User-Id" }, "prefer": "\#(value)" }"#))).config
            XCTAssertEqual(config.routes[0].split?.sticky?.prefer, expected)
            let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
            XCTAssertEqual(snapshot.routes[0].split?.sticky?.preferCookie, expected == .cookie)
        }
        let unsigned = try XCTUnwrap(parse(Doc.route(split + #", "sticky": {}"#))).config
        XCTAssertNil(unsigned.routes[0].split?.sticky?.prefer)
        XCTAssertEqual(try SnapshotBuilder.build(unsigned, version: 1, registry: EndpointRegistry()).routes[0].split?.sticky?.preferCookie, false)
        assertError(Doc.route(split + #", "sticky": { "prefer": "header" }"#),
                    #"routes[0].sticky.prefer: must be "cookie" or "key", got "header""#)
    }

    func testRulesPerRouteAreCapped() {
        let rule = #"{ "cookie": { "beta": "1" }, "variant": "a" }"#
        let rules = Array(repeating: rule, count: Routing.Split.maxRules + 1).joined(separator: ",")
        assertError(Doc.route(split + #", "rules": [\#(rules)]"#),
                    "routes[0].rules: at most \(Routing.Split.maxRules) rules, got \(Routing.Split.maxRules + 1)")
        let atCap = Array(repeating: rule, count: Routing.Split.maxRules).joined(separator: ",")
        XCTAssertNotNil(parse(Doc.route(split + #", "rules": [\#(atCap)]"#)))
    }
}

/// A RoutingRequest over owned strings.
private struct Request: RoutingRequest {
    var headers: [(String, String)]
    var method: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: Request.get.utf8Start, count: 3) }
    var host: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }
    var path: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: Request.slash.utf8Start, count: 1) }
    static let get: StaticString = "GET"
    static let slash: StaticString = "/"

    func forEachHeader(_ lowercasedName: Bytes, _ body: (UnsafeRawBufferPointer) -> Bool) {
        for (name, value) in headers where Array(name.lowercased().utf8) == lowercasedName {
            var value = value
            if !value.withUTF8({ body(UnsafeRawBufferPointer($0)) }) { return }
        }
    }
}
