// `stripHeaders` on a mirror: names validated when the config loads, compared case-insensitively,
// and the proxy's own fields (framing, Host, forwarding, the shadow mark) never strippable.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class MirrorStripHeadersConfigTests: XCTestCase {
    private func mirror(_ members: String) -> String {
        Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 10\#(members) }]"#)
    }

    func testDefaultStripsNothing() throws {
        let config = try XCTUnwrap(parse(mirror(""))).config
        XCTAssertEqual(config.routes[0].mirrors[0].stripHeaders, [])
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.routes[0].mirrors[0].stripHeaders, [])
    }

    func testNamesAreKeptAsWrittenAndMatchedLowercased() throws {
        let config = try XCTUnwrap(parse(mirror(#", "stripHeaders": ["Authorization", "COOKIE", "x-api-key"]"#))).config
        XCTAssertEqual(config.routes[0].mirrors[0].stripHeaders, ["Authorization", "COOKIE", "x-api-key"])
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.routes[0].mirrors[0].stripHeaders.map { String(decoding: $0, as: UTF8.self) },
                       ["authorization", "cookie", "x-api-key"])
    }

    func testInvalidNamesAreRefused() {
        assertError(mirror(#", "stripHeaders": ["Bad Name"]"#), "routes[0].mirror[0].stripHeaders[0]: \"Bad Name\" is not a valid header name")
        assertError(mirror(#", "stripHeaders": [""]"#), "stripHeaders[0]")
        assertError(mirror(#", "stripHeaders": "Cookie""#), "routes[0].mirror[0].stripHeaders")
        assertError(mirror(#", "stripHeaders": [1]"#), "stripHeaders[0]")
        assertError(mirror(#", "stripHeaders": ["Cookie", "cookie"]"#), "stripHeaders[1]: \"cookie\" is listed twice")
    }

    func testFieldsTheProxyWritesCannotBeStripped() {
        for name in ["Host", "content-length", "Transfer-Encoding", "X-Switchyard-Shadow", "X-Forwarded-For", "Connection"] {
            assertError(mirror(#", "stripHeaders": ["\#(name)"]"#), "\"\(name)\" is written by the proxy")
        }
    }
}
