// What the credentials servers answer, on the wire as AWS documents them, for the providers'
// tests: STS's AssumeRoleWithWebIdentity XML (and its error), the container endpoint's JSON and
// an IMDSv2 instance metadata service that refuses a GET without its session token.
import Foundation
import TestSupport
import XCTest

/// A credentials test with a temporary directory of its own, for credentials and token files.
class CredentialsTestCase: XCTestCase {
    var dir = ""
    var tokenFile: String { dir + "/token" }

    override func setUpWithError() throws { dir = try TemporaryDirectory.make(prefix: "switchyard-credentials") }
    override func tearDown() { TemporaryDirectory.remove(dir) }
}

enum CredentialsStandIns {
    /// 2026-12-07T21:00:00Z in seconds since the epoch.
    static let expiry = 1_796_677_200

    static func stsAnswer(key: String, expiration: String = "2026-12-07T21:00:00Z") -> String {
        """
        <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <AssumeRoleWithWebIdentityResult>
            <SubjectFromWebIdentityToken>system:serviceaccount:router:switchyard</SubjectFromWebIdentityToken>
            <AssumedRoleUser>
              <Arn>arn:aws:sts::123456789012:assumed-role/router/switchyard-1</Arn>
              <AssumedRoleId>AROAEXAMPLE:switchyard-1</AssumedRoleId>
            </AssumedRoleUser>
            <Credentials>
              <SessionToken>FwoGZXIvYXdzEXAMPLE/token+with=chars</SessionToken>
              <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>
              <Expiration>\(expiration)</Expiration>
              <AccessKeyId>\(key)</AccessKeyId>
            </Credentials>
            <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>
          </AssumeRoleWithWebIdentityResult>
          <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
        </AssumeRoleWithWebIdentityResponse>
        """
    }

    static func stsError(code: String, message: String) -> String {
        """
        <ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <Error><Type>Sender</Type><Code>\(code)</Code><Message>\(message)</Message></Error>
          <RequestId>8d5e4e4a-0000-4000-8000-000000000000</RequestId>
        </ErrorResponse>
        """
    }

    /// The JSON a container endpoint or instance metadata hands out.
    static func json(key: String, expiration: String = "2026-12-07T21:00:00Z") -> String {
        """
        {"Code":"Success","LastUpdated":"2026-12-07T15:00:00Z","Type":"AWS-HMAC","AccessKeyId":"\(key)",\
        "SecretAccessKey":"secret/\(key)","Token":"token+\(key)=","Expiration":"\(expiration)"}
        """
    }

    /// A container endpoint at `/creds` that answers `body` to a request with `Authorization:
    /// token` (or with none when `token` is nil) and 401 to any other.
    static func container(token: String?, body: String) throws -> HTTPStandIn {
        try HTTPStandIn { request in
            guard request.target == "/creds" else { return HTTPStandIn.response(404) }
            guard request.header("Authorization") == token else { return HTTPStandIn.response(401, #"{"message":"bad token"}"#) }
            return HTTPStandIn.response(200, body)
        }
    }

    /// Instance metadata with role `role` answering `body`; IMDSv2 (a PUT for the token
    /// first, 401 to a GET without it) unless `v1` (the PUT answered 404, GETs served as they
    /// come).
    static func instanceMetadata(role: String = "router-role", body: String, v1: Bool = false) throws -> HTTPStandIn {
        try HTTPStandIn { request in
            if request.method == "PUT" && request.target == "/latest/api/token" {
                guard !v1 else { return HTTPStandIn.response(404) }
                guard request.header("X-aws-ec2-metadata-token-ttl-seconds") == "21600" else { return HTTPStandIn.response(400) }
                return HTTPStandIn.response(200, "imds-session-token")
            }
            guard request.method == "GET" else { return HTTPStandIn.response(405) }
            guard v1 || request.header("X-aws-ec2-metadata-token") == "imds-session-token" else { return HTTPStandIn.response(401) }
            switch request.target {
            case "/latest/meta-data/iam/security-credentials/": return HTTPStandIn.response(200, role.isEmpty ? "" : role + "\n")
            case "/latest/meta-data/iam/security-credentials/\(role)": return HTTPStandIn.response(200, body)
            default: return HTTPStandIn.response(404)
            }
        }
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// The fields of an `application/x-www-form-urlencoded` body, decoded.
    static func form(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            out[String(parts[0]).removingPercentEncoding ?? ""] = String(parts[1]).removingPercentEncoding
        }
        return out
    }
}
