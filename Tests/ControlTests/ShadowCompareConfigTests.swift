// `compare` on a mirror: validated when the config loads (key path and reason), frozen into the
// snapshot the workers read; a mirror without it compares nothing.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class ShadowCompareConfigTests: XCTestCase {
    private func mirror(_ members: String) -> String {
        Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 10\#(members) }]"#)
    }

    private func spec(_ members: String) throws -> ShadowCompareSpec {
        let config = try XCTUnwrap(parse(mirror(members))).config
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        return snapshot.routes[0].mirrors[0].compare
    }

    func testWithoutCompareNothingIsCompared() throws {
        let config = try XCTUnwrap(parse(mirror(""))).config
        XCTAssertNil(config.routes[0].mirrors[0].compare)
        XCTAssertFalse(try spec("").enabled)
    }

    func testDefaultsAndModes() throws {
        XCTAssertEqual(try spec(#", "compare": {}"#), ShadowCompareSpec(status: 1, latency: true, bodyHash: false))
        XCTAssertEqual(try spec(#", "compare": { "status": "class", "latency": false }"#),
                       ShadowCompareSpec(status: 2, latency: false, bodyHash: false))
        XCTAssertEqual(try spec(#", "compare": { "status": false, "bodyHash": true }"#),
                       ShadowCompareSpec(status: 0, latency: true, bodyHash: true))
        XCTAssertEqual(try spec(#", "compare": { "status": "exact", "latency": true, "bodyHash": true }"#),
                       ShadowCompareSpec(status: 1, latency: true, bodyHash: true))
    }

    func testBadValuesAreRefusedWithTheirPath() {
        assertError(mirror(#", "compare": { "status": "loose" }"#),
                    "routes[0].mirror[0].compare.status: expected true, false, \"exact\" or \"class\", got \"loose\"")
        assertError(mirror(#", "compare": { "latency": 1 }"#), "routes[0].mirror[0].compare.latency: expected true or false")
        assertError(mirror(#", "compare": { "bodyhash": true }"#), "routes[0].mirror[0].compare")
        assertError(mirror(#", "compare": true"#), "routes[0].mirror[0].compare")
        assertError(mirror(#", "compare": { "status": false, "latency": false }"#),
                    "routes[0].mirror[0].compare: compares nothing")
    }
}
