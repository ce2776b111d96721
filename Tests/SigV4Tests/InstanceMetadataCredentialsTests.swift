// EC2 instance metadata against a loopback stand-in of IMDSv2: the token PUT first, then the
// role list and the role's credentials with the token; IMDSv1 only when the service has no
// tokens; switched off by AWS_EC2_METADATA_DISABLED; a service that is not there is "nothing
// configured" (nil), an answer that is wrong is an error.
import Foundation
@testable import SigV4
import TestSupport
import XCTest

final class InstanceMetadataCredentialsTests: XCTestCase {
    private func provider(_ server: HTTPStandIn, _ extra: [String: String] = [:]) -> InstanceMetadataCredentials {
        InstanceMetadataCredentials(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(server.port)/"].merging(extra) { $1 })
    }

    func testTheTokenFirstThenTheRoleThenItsCredentials() throws {
        let imds = try CredentialsStandIns.instanceMetadata(body: CredentialsStandIns.json(key: "ASIAINSTANCE"))
        let c = try XCTUnwrap(provider(imds).resolve())
        XCTAssertEqual(c, AWSCredentials(accessKeyID: "ASIAINSTANCE", secretAccessKey: "secret/ASIAINSTANCE", sessionToken: "token+ASIAINSTANCE=",
                                         expiration: CredentialsStandIns.expiry, source: "EC2 instance metadata (role router-role)"))
        let asked = imds.requests.map { "\($0.method) \($0.target) \($0.header("X-aws-ec2-metadata-token") ?? "-")" }
        XCTAssertEqual(asked, ["PUT /latest/api/token -",
                               "GET /latest/meta-data/iam/security-credentials/ imds-session-token",
                               "GET /latest/meta-data/iam/security-credentials/router-role imds-session-token"])
        XCTAssertEqual(imds.requests.first?.header("X-aws-ec2-metadata-token-ttl-seconds"), "21600")
    }

    func testWithoutTokensTheServiceIsAskedAsIMDSv1UnlessThatIsOff() throws {
        let v1 = try CredentialsStandIns.instanceMetadata(body: CredentialsStandIns.json(key: "ASIAV1"), v1: true)
        XCTAssertEqual(try provider(v1).resolve()?.accessKeyID, "ASIAV1")
        XCTAssertNil(v1.requests.last?.header("X-aws-ec2-metadata-token"))
        XCTAssertThrowsError(try provider(v1, ["AWS_EC2_METADATA_V1_DISABLED": "true"]).resolve()) {
            XCTAssertTrue("\($0)".hasSuffix("answered 404 to the token request and AWS_EC2_METADATA_V1_DISABLED is set"), "\($0)")
        }
        // A service that requires tokens but would not give one: its 401 to a GET without one.
        let noTokens = try HTTPStandIn { request in
            request.method == "PUT" ? HTTPStandIn.response(403)
                : request.header("X-aws-ec2-metadata-token") == nil ? HTTPStandIn.response(401) : HTTPStandIn.response(200, "r")
        }
        XCTAssertThrowsError(try provider(noTokens).resolve()) {
            XCTAssertEqual("\($0)", "EC2 instance metadata at http://127.0.0.1:\(noTokens.port): answered 401 to the role list")
        }
    }

    func testDisabledAndNotThereAreNothingConfigured() throws {
        let imds = try CredentialsStandIns.instanceMetadata(body: CredentialsStandIns.json(key: "ASIAINSTANCE"))
        for value in ["true", "TRUE", "True"] {
            XCTAssertNil(try provider(imds, ["AWS_EC2_METADATA_DISABLED": value]).resolve())
        }
        XCTAssertEqual(imds.requests.count, 0, "switched off: not asked")
        XCTAssertNotNil(try provider(imds, ["AWS_EC2_METADATA_DISABLED": "false"]).resolve())

        let (closed, port) = try Sockets.bound(listen: false)   // bound, not listening: refused
        defer { close(closed) }
        let notThere = InstanceMetadataCredentials(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(port)"])
        XCTAssertNil(try notThere.resolve())
        XCTAssertEqual(notThere.name, "EC2 instance metadata (http://127.0.0.1:\(port))")
        let noRole = try CredentialsStandIns.instanceMetadata(role: "", body: "")
        XCTAssertNil(try provider(noRole).resolve(), "an instance without a role")
        XCTAssertThrowsError(try InstanceMetadataCredentials(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"]).resolve())
    }

    func testMalformedAndHostileAnswersAreErrors() throws {
        let good = CredentialsStandIns.json(key: "ASIAOK")
        let cases: [(body: String, reason: String)] = [
            (String(good.prefix(60)), "(role router-role): the answer is not JSON"),
            (good.replacingOccurrences(of: "\"Success\"", with: "\"Failure\",\"Message\":\"no role\""), "(role router-role): Failure: no role"),
            (good.replacingOccurrences(of: "\"SecretAccessKey\":\"secret/ASIAOK\",", with: ""), "the answer has no SecretAccessKey"),
            (good.replacingOccurrences(of: "\"ASIAOK\"", with: "123456789012345678901234567890"), "AccessKeyId is not a string"),
            (good.replacingOccurrences(of: "2026-12-07T21:00:00Z\"", with: "2026-12-07 21:00:00\""), "not an ISO 8601 UTC time"),
            (good.replacingOccurrences(of: "2026-12-07T21:00:00Z\"", with: "2026-12-07T21:00:00+02:00\""), "not an ISO 8601 UTC time"),
        ]
        for c in cases {
            let imds = try CredentialsStandIns.instanceMetadata(body: c.body)
            XCTAssertThrowsError(try provider(imds).resolve(), c.reason) { XCTAssertTrue("\($0)".contains(c.reason), "\(c.reason): \($0)") }
        }
        let badRole = try CredentialsStandIns.instanceMetadata(role: "../../user-data", body: good)
        XCTAssertThrowsError(try provider(badRole).resolve()) {
            XCTAssertTrue("\($0)".contains("the role name \"../../user-data\" is not a name"), "\($0)")
        }
    }

    func testExpirationForms() {
        XCTAssertEqual(CredentialsExpiration.parse("2026-12-07T21:00:00Z"), CredentialsStandIns.expiry)
        XCTAssertEqual(CredentialsExpiration.parse("2026-12-07T21:00:00.000Z"), CredentialsStandIns.expiry)
        XCTAssertEqual(CredentialsExpiration.parse("2026-12-07T21:00:00.123456789Z"), CredentialsStandIns.expiry)
        XCTAssertEqual(CredentialsExpiration.parse("2026-12-07T21:00:00+00:00"), CredentialsStandIns.expiry)
        XCTAssertEqual(CredentialsExpiration.parse("2000-02-29T00:00:00Z"), 951_782_400)
        XCTAssertEqual(CredentialsExpiration.parse("1970-01-01T00:00:00Z"), 0)
        XCTAssertEqual(CredentialsExpiration.parse("9999-12-31T23:59:59Z"), 253_402_300_799)
        for bad in ["", "2026-12-07", "2026-12-07T21:00:00", "2026-12-07T21:00:00z", "2026-12-07T21:00:00+01:00", "2026-12-07T21:00:00-00:00",
                    "2026-12-07T21:00:00.Z", "2026-12-07T21:00:00.0000000000Z", "2026-12-07T24:00:00Z", "2026-12-07T21:60:00Z",
                    "2026-12-07T21:00:60Z", "2026-00-07T21:00:00Z", "2026-12-32T21:00:00Z", "2100-02-29T00:00:00Z", "1969-12-31T23:59:59Z",
                    "+026-12-07T21:00:00Z", "2026-12-07T21:00:00ZZ", "2026-12-07T21:00:00Z ", "２026-12-07T21:00:00Z", "2026/12/07T21:00:00Z"] {
            XCTAssertNil(CredentialsExpiration.parse(bad), bad)
        }
    }
}
