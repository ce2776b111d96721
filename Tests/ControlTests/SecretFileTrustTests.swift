// A cookie-signing secret file that other users can read is warned about, naming the file and
// its mode; the config still loads (a permission slip must not stop a running fleet).
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import XCTest

final class SecretFileTrustTests: XCTestCase {
    private let split = #""split": [{ "variant": "a", "upstream": "app", "weight": 1 }], "#

    private func warnings(secretMode mode: mode_t) throws -> [String] {
        let file = try TemporaryFile(contents: "s3cret-0123456789ab\n", suffix: ".key")
        defer { file.remove() }
        XCTAssertEqual(chmod(file.path, mode), 0)
        let loaded = try XCTUnwrap(parse(Doc.route(split + "\"sticky\": { \"secretFile\": \"\(file.path)\" }")))
        XCTAssertNotNil(loaded.config.routes[0].split?.sticky?.secret, "loaded regardless")
        return loaded.warnings.filter { $0.contains("secret") }.map { $0.replacingOccurrences(of: file.path, with: "FILE") }
    }

    func testASecretFileOthersCanReadIsWarnedAbout() throws {
        XCTAssertEqual(try warnings(secretMode: 0o644),
                       [#"test.json:5: routes[0].sticky.secretFile: secret file "FILE" has mode 0644: every local user can read it and sign cookies; chmod 600 it"#])
        XCTAssertEqual(try warnings(secretMode: 0o640).first?.contains("has mode 0640: its group can read it"), true)
        XCTAssertEqual(try warnings(secretMode: 0o604).first?.contains("has mode 0604: every local user"), true)
        XCTAssertEqual(try warnings(secretMode: 0o600), [])
        XCTAssertEqual(try warnings(secretMode: 0o400), [])
    }
}
