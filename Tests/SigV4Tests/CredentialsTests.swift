// Where credentials come from, in the AWS SDKs' order: the environment, the shared credentials
// file's profile, web identity, the container endpoint, instance metadata; a half-configured
// source is an error, not a fall-through.
import Foundation
import SigV4
import TestSupport
import XCTest

final class CredentialsTests: CredentialsTestCase {
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
        XCTAssertThrowsError(try CredentialsChain.standard(environment: ["HOME": dir, "AWS_PROFILE": "missing",
                                                                         "AWS_EC2_METADATA_DISABLED": "true"]).resolve()) {
            XCTAssertTrue("\($0)".hasPrefix("no AWS credentials found (looked in: environment, shared credentials file"), "\($0)")
        }
        XCTAssertThrowsError(try CredentialsChain.standard(environment: ["AWS_SECRET_ACCESS_KEY": "s", "HOME": dir]).resolve()) {
            XCTAssertEqual("\($0)", "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", "a half-set environment is not skipped")
        }
    }

    func testTheChainAsksEachSourceInTheSDKsOrder() throws {
        let sts = try HTTPStandIn(always: HTTPStandIn.response(200, CredentialsStandIns.stsAnswer(key: "WEBIDENTITY")))
        let agent = try CredentialsStandIns.container(token: nil, body: CredentialsStandIns.json(key: "CONTAINER"))
        let imds = try CredentialsStandIns.instanceMetadata(body: CredentialsStandIns.json(key: "INSTANCE"))
        try CredentialsStandIns.write("token", to: tokenFile)
        var env = ["AWS_ACCESS_KEY_ID": "ENVIRONMENT", "AWS_SECRET_ACCESS_KEY": "e",
                   "AWS_SHARED_CREDENTIALS_FILE": try file("[default]\naws_access_key_id = FILE\naws_secret_access_key = f\n"),
                   "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/router", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
                   "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:\(sts.port)",
                   "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(agent.port)/creds",
                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(imds.port)"]
        // Each source in turn is taken away; the next one answers, and none after it is asked.
        let order: [(winner: String, remove: [String])] = [
            ("ENVIRONMENT", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]), ("FILE", ["AWS_SHARED_CREDENTIALS_FILE"]),
            ("WEBIDENTITY", ["AWS_WEB_IDENTITY_TOKEN_FILE"]), ("CONTAINER", ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]),
            ("INSTANCE", ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]),
        ]
        for (i, step) in order.enumerated() {
            XCTAssertEqual(try CredentialsChain.standard(environment: env).resolve().accessKeyID, step.winner)
            XCTAssertEqual([sts.requests.count, agent.requests.count, imds.requests.count > 0 ? 1 : 0],
                           [i >= 2 ? 1 : 0, i >= 3 ? 1 : 0, i >= 4 ? 1 : 0], "only the sources up to \(step.winner) were asked")
            for name in step.remove { env[name] = nil }
        }
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        XCTAssertThrowsError(try CredentialsChain.standard(environment: env).resolve()) {
            XCTAssertEqual("\($0)", "no AWS credentials found (looked in: environment, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), "
                           + "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI), EC2 instance metadata (off: AWS_EC2_METADATA_DISABLED))")
        }
    }
}
