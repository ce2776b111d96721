// Where credentials come from, in the AWS SDKs' order: the environment first, then the shared
// credentials file's profile; a half-configured source is an error, not a fall-through.
import Foundation
import SigV4
import TestSupport
import XCTest

final class CredentialsTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws { dir = try TemporaryDirectory.make(prefix: "switchyard-credentials") }
    override func tearDown() { TemporaryDirectory.remove(dir) }

    private func file(_ text: String) throws -> String {
        let path = dir + "/credentials"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testEnvironmentComesBeforeTheSharedFile() throws {
        let path = try file("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n")
        let both = CredentialsChain.standard(environment: ["AWS_ACCESS_KEY_ID": "FROMENV", "AWS_SECRET_ACCESS_KEY": "e",
                                                           "AWS_SESSION_TOKEN": "t", "AWS_SHARED_CREDENTIALS_FILE": path])
        let c = try both.resolve()
        XCTAssertEqual(c.accessKeyID, "FROMENV")
        XCTAssertEqual(c.sessionToken, "t")
        XCTAssertEqual(c.source, "environment")
        let fileOnly = try CredentialsChain.standard(environment: ["AWS_SHARED_CREDENTIALS_FILE": path]).resolve()
        XCTAssertEqual(fileOnly.accessKeyID, "FROMFILE")
        XCTAssertNil(fileOnly.sessionToken)
    }

    func testProfilesCommentsAndWhitespaceInTheSharedFile() throws {
        let path = try file("""
            # comment
            [default]
            aws_access_key_id=DEFAULT
            aws_secret_access_key=d

            [ router ]
              AWS_ACCESS_KEY_ID = ROUTER   
            aws_secret_access_key = r/with+chars=
            ; another comment
            aws_session_token = tok
            [other]
            aws_access_key_id = OTHER
            """)
        let router = try CredentialsChain.standard(environment: ["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "router"]).resolve()
        XCTAssertEqual(router, AWSCredentials(accessKeyID: "ROUTER", secretAccessKey: "r/with+chars=", sessionToken: "tok",
                                              source: "shared credentials file \(path) (profile router)"))
        XCTAssertEqual(try CredentialsChain.standard(environment: ["AWS_SHARED_CREDENTIALS_FILE": path]).resolve().accessKeyID, "DEFAULT")
        XCTAssertThrowsError(try CredentialsChain.standard(environment: ["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "other"]).resolve()) {
            XCTAssertEqual("\($0)", "\(path): profile other has aws_access_key_id but no aws_secret_access_key")
        }
    }

    func testHomeDirectoryFileAndNothingFound() throws {
        try FileManager.default.createDirectory(atPath: dir + "/.aws", withIntermediateDirectories: true)
        try Data("[default]\naws_access_key_id = HOME\naws_secret_access_key = h\n".utf8)
            .write(to: URL(fileURLWithPath: dir + "/.aws/credentials"))
        XCTAssertEqual(try CredentialsChain.standard(environment: ["HOME": dir]).resolve().accessKeyID, "HOME")
        XCTAssertThrowsError(try CredentialsChain.standard(environment: ["HOME": dir, "AWS_PROFILE": "missing"]).resolve()) {
            XCTAssertTrue("\($0)".hasPrefix("no AWS credentials found (looked in: environment, shared credentials file"), "\($0)")
        }
        XCTAssertThrowsError(try CredentialsChain.standard(environment: ["AWS_SECRET_ACCESS_KEY": "s", "HOME": dir]).resolve()) {
            XCTAssertEqual("\($0)", "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", "a half-set environment is not skipped")
        }
    }
}
