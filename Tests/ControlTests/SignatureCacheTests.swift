// Signed sticky cookies across runtime changes: a weight change reuses the signature table the
// running snapshot holds (it used to sign all 10,000 buckets of every signed route on every
// commit), a changed secret or salt makes a new one, and cookies issued before a weight change
// still verify after it.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import TestSupport
import XCTest
import Routing
@testable import Runtime
import XCTest

final class SignatureCacheTests: XCTestCase {
    private func config(secretEnv: String, salt: String? = nil) -> String {
        let saltMember = salt.map { #", "salt": "\#($0)""# } ?? ""
        return Doc.make(
            upstreams: #"""
            { "stable": { "endpoints": ["127.0.0.1:9001"] }, "canary": { "endpoints": ["127.0.0.1:9002"] } }
            """#,
            routes: #"""
            [{ "name": "shop", "split": [{ "variant": "stable", "upstream": "stable", "weight": 90 },
                                         { "variant": "canary", "upstream": "canary", "weight": 10 }],
               "sticky": { "key": { "header": "X-User-Id" }, "secretEnv": "\#(secretEnv)"\#(saltMember) } },
             { "name": "plain", "match": { "pathPrefix": "/plain" }, "split": [{ "variant": "a", "upstream": "stable", "weight": 50 },
                                                             { "variant": "b", "upstream": "canary", "weight": 50 }],
               "sticky": {} }]
            """#)
    }

    private func sticky(_ snapshot: Snapshot, route: Int = 0) throws -> Sticky {
        guard case .split(let split) = snapshot.routes[route].target, let sticky = split.sticky else {
            throw TestError("the fixture is broken: route \(route) has no sticky split")
        }
        return sticky
    }

    private func table(_ snapshot: Snapshot) throws -> SignatureTable {
        try XCTUnwrap(try sticky(snapshot).signatures, "the route signs its cookies")
    }

    private func cookie(_ sticky: Sticky, bucket: Int32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Sticky.maxCookieValueBytes)
        let n = out.withUnsafeMutableBytes { sticky.writeCookieValue(bucket: bucket, into: $0) }
        return Array(out.prefix(n))
    }

    private func weights(_ stable: Int, _ canary: Int) -> RuntimeChange {
        .weights(route: "shop", weights: [.init(variant: "stable", weight: stable), .init(variant: "canary", weight: canary)])
    }

    func testAWeightChangeReusesTheSignatureTable() throws {
        try withEnvironment("first-secret-0123456") { name in
            let loaded = try XCTUnwrap(parse(config(secretEnv: name)))
            let state = try RuntimeState(loaded: loaded, source: .file("t.json"), log: { _ in })
            let before = try table(state.snapshot)
            let issued = (0..<Int32(10_000)).filter { $0 % 97 == 0 }.map { ($0, cookie(try! sticky(state.snapshot), bucket: $0)) }

            try state.queue.sync {
                _ = try state.commit([weights(50, 50)])
                _ = try state.commit([weights(0, 100)])
            }
            XCTAssertEqual(state.version, 3)
            guard case .split(let split) = state.snapshot.routes[0].target else { return XCTFail("shop splits") }
            XCTAssertEqual(split.thresholds, [0, 10_000], "the weights did change")
            XCTAssertTrue(try table(state.snapshot) === before, "a weight change signs nothing: the table is the same object")

            let after = try sticky(state.snapshot)
            for (bucket, value) in issued {
                XCTAssertEqual(value.withUnsafeBytes { after.parseCookie($0) }, bucket,
                               "a cookie issued before the change verifies after it: \(String(decoding: value, as: UTF8.self))")
                XCTAssertEqual(cookie(after, bucket: bucket), value, "and is issued the same")
            }
            var forged = issued[3].1
            forged[forged.count - 1] = forged.last == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            XCTAssertNil(forged.withUnsafeBytes { after.parseCookie($0) }, "a forged signature is still refused")
        }
    }

    func testTheSameSecretAndSaltShareATableAcrossBuilds() throws {
        let cache = SignatureCache()
        try withEnvironment("shared-secret-012345") { name in
            let config = try XCTUnwrap(parse(config(secretEnv: name))).config
            let registry = EndpointRegistry()
            let first = try SnapshotBuilder.build(config, version: 1, registry: registry, signatures: cache)
            let second = try SnapshotBuilder.build(config, version: 2, registry: registry, signatures: cache)
            XCTAssertTrue(try table(first) === table(second))
            XCTAssertEqual(cache.tablesSigned, 1)
            XCTAssertNil(try sticky(first, route: 1).signatures, "an unsigned route has no table")
        }
    }

    func testAChangedSecretOrSaltSignsANewTable() throws {
        let cache = SignatureCache()
        let registry = EndpointRegistry()
        try withEnvironment("secret-one-0123456789") { one in
            try withEnvironment("secret-two-0123456789") { two in
                let base = try SnapshotBuilder.build(try XCTUnwrap(parse(config(secretEnv: one))).config, version: 1,
                                                     registry: registry, signatures: cache)
                let rotated = try SnapshotBuilder.build(try XCTUnwrap(parse(config(secretEnv: two))).config, version: 2,
                                                        registry: registry, signatures: cache)
                let resalted = try SnapshotBuilder.build(try XCTUnwrap(parse(config(secretEnv: one, salt: "shop-2"))).config,
                                                         version: 3, registry: registry, signatures: cache)
                XCTAssertFalse(try table(base) === table(rotated), "another secret: another table")
                XCTAssertFalse(try table(base) === table(resalted), "another salt: another table")
                XCTAssertEqual(cache.tablesSigned, 3)

                // Each table is the one its own secret and salt make.
                let value = cookie(try sticky(base), bucket: 4321)
                XCTAssertEqual(value.withUnsafeBytes { try! sticky(base).parseCookie($0) }, 4321)
                XCTAssertNil(value.withUnsafeBytes { try! sticky(rotated).parseCookie($0) }, "the rotated secret refuses it")
                XCTAssertNil(value.withUnsafeBytes { try! sticky(resalted).parseCookie($0) }, "the new salt refuses it")
                let fresh = try SnapshotBuilder.build(try XCTUnwrap(parse(config(secretEnv: two))).config, version: 1,
                                                      registry: EndpointRegistry(), signatures: SignatureCache())
                XCTAssertFalse(try table(fresh) === table(rotated))
                XCTAssertEqual(cookie(try sticky(rotated), bucket: 77), cookie(try sticky(fresh), bucket: 77),
                               "a cached table signs as a table made on the spot")
            }
        }
    }

    func testATableNoSnapshotHoldsIsNotKept() throws {
        let cache = SignatureCache()
        try withEnvironment("short-lived-0123456789") { name in
            let config = try XCTUnwrap(parse(config(secretEnv: name))).config
            weak var dropped: SignatureTable?
            do {
                let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry(), signatures: cache)
                dropped = try table(snapshot)
            }
            XCTAssertNil(dropped, "the cache holds tables weakly")
            _ = try SnapshotBuilder.build(config, version: 2, registry: EndpointRegistry(), signatures: cache)
            XCTAssertEqual(cache.tablesSigned, 2, "once no snapshot held it, the table is signed again")
        }
    }
}
