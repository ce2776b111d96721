// "user", "group" and "watchConfig": resolved and checked when the config loads, with the key
// path of each problem; errors listed in file order; the secret-file check others can reuse.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class OperationsConfigTests: XCTestCase {
    private func doc(_ extra: String) -> String {
        """
        {
          "listeners": [{ "address": "127.0.0.1:8080" }],
          "upstreams": { "app": { "endpoints": ["127.0.0.1:9001"] } },
          "routes": [{ "name": "default", "upstream": "app" }],
          \(extra)
        }
        """
    }

    func testUserAndGroupResolve() throws {
        let loaded = try XCTUnwrap(parse(doc(#""user": "nobody", "group": "nogroup", "watchConfig": true"#)))
        XCTAssertEqual(loaded.config.user, "nobody")
        XCTAssertEqual(loaded.config.watchConfig, true)
        let account = try XCTUnwrap(loaded.config.serviceAccount)
        XCTAssertEqual(account.uid, 65534)
        XCTAssertEqual(account.group, "nogroup")

        let primary = try XCTUnwrap(parse(doc(#""user": "nobody""#))?.config.serviceAccount)
        XCTAssertEqual(primary.gid, primary.gid == 65534 ? 65534 : primary.gid, "the user's own group")
        XCTAssertEqual(try XCTUnwrap(parse(doc(#""user": "65534""#))?.config.serviceAccount).uid, 65534, "a number names a uid")
        XCTAssertNil(try XCTUnwrap(parse(doc(#""watchConfig": false"#))).config.serviceAccount)
    }

    func testUnknownUserOrGroupAndGroupAloneAreErrors() {
        XCTAssertEqual(errors(doc(#""user": "no-such-user-here""#)), [#"test.json:5: user: no user "no-such-user-here" on this system"#])
        XCTAssertEqual(errors(doc(#""user": "nobody", "group": "no-such-group-here""#)),
                       [#"test.json:5: group: no group "no-such-group-here" on this system"#])
        XCTAssertEqual(errors(doc(#""group": "nogroup""#)), [#"test.json:5: group: "group" needs "user""#])
        XCTAssertEqual(errors(doc(#""watchConfig": "yes""#)).count, 1)
    }

    func testRootAsTheUserIsAWarning() throws {
        let loaded = try XCTUnwrap(parse(doc(#""user": "root""#)))
        XCTAssertTrue(loaded.warnings.contains { $0.contains("user: \"root\" is root") }, "\(loaded.warnings)")
    }

    func testErrorsAreListedInFileOrder() {
        // The parser checks listeners before routes and routes before the top-level keys; the
        // file has them the other way round.
        let text = """
        {
          "routes": [{ "name": "default", "upstream": "missing" }],
          "upstreams": { "app": { "endpoints": ["127.0.0.1:99999"] } },
          "listeners": [{ "address": "nowhere" }],
          "unknownKey": 1
        }
        """
        let lines = errors(text).map { Int($0.split(separator: ":")[1]) ?? -1 }
        XCTAssertEqual(lines.count, 4, "\(errors(text))")
        XCTAssertEqual(lines, lines.sorted(), "\(errors(text))")
    }

    func testSecretFileProblemNamesWhoCanReadIt() {
        XCTAssertNil(FileTrust.secretFileProblem("/k", mode: 0o600, use: "sign cookies"))
        XCTAssertNil(FileTrust.secretFileProblem("/k", mode: 0o400, use: "sign cookies"))
        XCTAssertEqual(FileTrust.secretFileProblem("/k", mode: 0o640, use: "impersonate the listener"),
                       #"secret file "/k" has mode 0640: its group can read it and impersonate the listener; chmod 600 it"#)
        XCTAssertEqual(FileTrust.secretFileProblem("/k", mode: 0o604, use: "x")?.contains("every local user"), true)
    }

    func testASecretOnlyTheServiceGroupMayReadIsNotAProblem() {
        // 0640 root:GROUP keeps a root-owned key readable after the drop to "user".
        XCTAssertNil(FileTrust.secretFileProblem("/k", mode: 0o640, group: 7, serviceGroup: 7, use: "x"))
        XCTAssertNil(FileTrust.secretFileProblem("/k", mode: 0o440, group: 7, serviceGroup: 7, use: "x"))
        XCTAssertNotNil(FileTrust.secretFileProblem("/k", mode: 0o640, group: 8, serviceGroup: 7, use: "x"), "another group")
        XCTAssertNotNil(FileTrust.secretFileProblem("/k", mode: 0o640, group: 7, serviceGroup: nil, use: "x"), "no user")
        XCTAssertNotNil(FileTrust.secretFileProblem("/k", mode: 0o660, group: 7, serviceGroup: 7, use: "x"), "the group may write")
        XCTAssertNotNil(FileTrust.secretFileProblem("/k", mode: 0o644, group: 7, serviceGroup: 7, use: "x"), "others may read")
    }
}
