// The admin listener lists every endpoint address and dark variant: it is loopback by default,
// and a non-loopback address loads with a warning (printed by `check` and at start).
@testable import Admin
@testable import CommandSocket
@testable import Config
@testable import Rollouts
@testable import Runtime
import XCTest

final class AdminExposureConfigTests: XCTestCase {
    private func adminWarnings(_ admin: String) throws -> [String] {
        let result = try XCTUnwrap(parse(Doc.make(extra: #""admin": \#(admin)"#)))
        return result.warnings.filter { $0.contains("admin") }
    }

    func testDefaultAddressIsLoopbackWithoutWarning() throws {
        let result = try XCTUnwrap(parse(Doc.make(extra: #""admin": {}"#)))
        XCTAssertEqual(result.config.admin?.address.description, "127.0.0.1:9901")
        XCTAssertEqual(result.config.admin?.address.isLoopback, true)
        XCTAssertEqual(result.warnings, [])
    }

    func testLoopbackAddressesLoadQuietly() throws {
        for address in ["127.0.0.1:9901", "127.1.2.3:0", "[::1]:9901", "localhost:9901"] {
            XCTAssertEqual(try adminWarnings(#"{ "address": "\#(address)" }"#), [], address)
        }
    }

    func testNonLoopbackAddressesWarn() throws {
        for address in ["0.0.0.0:9901", "[::]:9901", "10.1.2.3:9901"] {
            let warnings = try adminWarnings(#"{ "address": "\#(address)" }"#)
            XCTAssertEqual(warnings.count, 1, "\(address): \(warnings)")
            XCTAssertTrue(warnings.first?.contains("admin.address: \(address) is not a loopback address") == true,
                          "\(address): \(warnings)")
            XCTAssertTrue(warnings.first?.contains("every endpoint address") == true)
        }
    }

    func testNoAdminSectionMeansNoAdminListener() throws {
        XCTAssertNil(try XCTUnwrap(parse(Doc.make())).config.admin)
    }
}
