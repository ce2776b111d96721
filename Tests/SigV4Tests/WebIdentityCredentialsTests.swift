// Web identity (EKS IRSA): the token file traded at STS with AssumeRoleWithWebIdentity, against
// a loopback stand-in for STS; the token read again on every call, STS's errors and malformed
// answers turned into errors that say what went wrong.
import Foundation
@testable import SigV4
import TestSupport
import XCTest

final class WebIdentityCredentialsTests: CredentialsTestCase {
    private func environment(_ sts: HTTPStandIn, _ extra: [String: String] = [:]) -> [String: String] {
        ["AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/router", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
         "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:\(sts.port)"].merging(extra) { $1 }
    }

    func testAssumesTheRoleWithTheTokenReadOnEveryCall() throws {
        let sts = try HTTPStandIn(always: HTTPStandIn.response(200, CredentialsStandIns.stsAnswer(key: "ASIAWEBIDENTITY")))
        try CredentialsStandIns.write("eyJhbGciOi.first+token/=", to: tokenFile)
        let provider = WebIdentityCredentials(environment: environment(sts, ["AWS_ROLE_SESSION_NAME": "router-a"]))
        let c = try XCTUnwrap(provider.resolve())
        XCTAssertEqual(c, AWSCredentials(accessKeyID: "ASIAWEBIDENTITY", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                         sessionToken: "FwoGZXIvYXdzEXAMPLE/token+with=chars", expiration: CredentialsStandIns.expiry,
                                         source: "web identity (AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile))"))
        let first = try XCTUnwrap(sts.requests.first)
        XCTAssertEqual(first.method, "POST")
        XCTAssertEqual(first.target, "/")
        XCTAssertEqual(first.header("Content-Type"), "application/x-www-form-urlencoded; charset=utf-8")
        XCTAssertNil(first.header("Authorization"), "the call is not signed: the token is the proof")
        XCTAssertTrue(first.bodyText.contains("WebIdentityToken=eyJhbGciOi.first%2Btoken%2F%3D"), first.bodyText)
        XCTAssertEqual(CredentialsStandIns.form(first.bodyText), [
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::123456789012:role/router",
            "RoleSessionName": "router-a", "WebIdentityToken": "eyJhbGciOi.first+token/=",
        ])

        try CredentialsStandIns.write("rotated-token", to: tokenFile)   // what the kubelet does
        _ = try provider.resolve()
        XCTAssertEqual(CredentialsStandIns.form(sts.requests[1].bodyText)["WebIdentityToken"], "rotated-token")

        _ = try WebIdentityCredentials(environment: environment(sts)).resolve()
        let session = CredentialsStandIns.form(sts.requests[2].bodyText)["RoleSessionName"] ?? ""
        XCTAssertTrue(session.hasPrefix("switchyard-") && session.dropFirst(11).allSatisfy(\.isNumber), session)
    }

    func testAnSTSErrorNamesItsCodeAndMessage() throws {
        let sts = try HTTPStandIn(always: HTTPStandIn.response(400, CredentialsStandIns.stsError(
            code: "InvalidIdentityToken", message: "Token audience &lt;sts.amazonaws.com&gt; is not valid")))
        try CredentialsStandIns.write("token", to: tokenFile)
        XCTAssertThrowsError(try WebIdentityCredentials(environment: environment(sts)).resolve()) {
            XCTAssertEqual("\($0)", "STS AssumeRoleWithWebIdentity at http://127.0.0.1:\(sts.port) for arn:aws:iam::123456789012:role/router: "
                           + "InvalidIdentityToken: Token audience <sts.amazonaws.com> is not valid")
        }
    }

    func testNotConfiguredHalfConfiguredAndUnreadable() throws {
        XCTAssertNil(try WebIdentityCredentials(environment: ["AWS_ROLE_ARN": "arn:aws:iam::1:role/r"]).resolve(),
                     "a role without a token file is not this provider's")
        XCTAssertThrowsError(try WebIdentityCredentials(environment: ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile]).resolve()) {
            XCTAssertEqual("\($0)", "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
        }
        let (closed, port) = try Sockets.bound(listen: false)
        defer { close(closed) }
        let env = ["AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
                   "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:\(port)"]
        XCTAssertThrowsError(try WebIdentityCredentials(environment: env).resolve()) {
            XCTAssertEqual("\($0)", "cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE)")
        }
        try CredentialsStandIns.write("", to: tokenFile)
        XCTAssertThrowsError(try WebIdentityCredentials(environment: env).resolve()) { XCTAssertTrue("\($0)".hasSuffix("is empty"), "\($0)") }
        try CredentialsStandIns.write("token", to: tokenFile)
        XCTAssertThrowsError(try WebIdentityCredentials(environment: env).resolve(), "a configured STS that is not there is an error") {
            XCTAssertTrue("\($0)".contains("cannot connect to 127.0.0.1:\(port)"), "\($0)")
        }
    }

    func testTheSTSEndpoint() throws {
        func endpoint(_ env: [String: String]) throws -> String {
            let u = try WebIdentityCredentials(environment: env).stsEndpoint()
            return "\(u.secure ? "https" : "http")://\(u.authority)\(u.path)"
        }
        XCTAssertEqual(try endpoint([:]), "https://sts.amazonaws.com:443/", "no region: the global endpoint")
        XCTAssertEqual(try endpoint(["AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"]), "https://sts.eu-west-1.amazonaws.com:443/")
        XCTAssertEqual(try endpoint(["AWS_DEFAULT_REGION": "us-east-2"]), "https://sts.us-east-2.amazonaws.com:443/")
        XCTAssertEqual(try endpoint(["AWS_REGION": "cn-north-1"]), "https://sts.cn-north-1.amazonaws.com.cn:443/")
        XCTAssertEqual(try endpoint(["AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9/all"]), "http://127.0.0.1:9/all")
        XCTAssertEqual(try endpoint(["AWS_ENDPOINT_URL_STS": "http://[::1]:8/", "AWS_ENDPOINT_URL": "http://127.0.0.1:9/"]), "http://[::1]:8/")
        XCTAssertThrowsError(try endpoint(["AWS_REGION": "eu-west-1.evil.example/x"])) {
            XCTAssertTrue("\($0)".hasPrefix("AWS_REGION \"eu-west-1.evil.example/x\" is not a region name"), "\($0)")
        }
        XCTAssertThrowsError(try endpoint(["AWS_ENDPOINT_URL_STS": "sts.local"])) {
            XCTAssertEqual("\($0)", "AWS_ENDPOINT_URL_STS \"sts.local\" is not an http:// or https:// URL")
        }
    }

    func testMalformedAndHostileAnswersAreErrors() throws {
        let good = CredentialsStandIns.stsAnswer(key: "ASIAOK")
        let cases: [(status: Int, body: String, reason: String)] = [
            (200, String(good.prefix(300)), "not well-formed XML"),
            (200, "", "answered 200 with no body"),
            (200, "not xml at all", "no root element"),
            (200, good.replacingOccurrences(of: "<AccessKeyId>ASIAOK</AccessKeyId>", with: ""), "no Credentials/AccessKeyId"),
            (200, good.replacingOccurrences(of: "2026-12-07T21:00:00Z", with: "2026-13-07T21:00:00Z"), "Expiration \"2026-13-07T21:00:00Z\""),
            (200, good.replacingOccurrences(of: "2026-12-07T21:00:00Z", with: "1796677200"), "not an ISO 8601 UTC time"),
            (200, good.replacingOccurrences(of: "ASIAOK", with: "ASIA&#13;&#10;X-Injected: 1"), "AccessKeyId holds a space, a control"),
            (200, good.replacingOccurrences(of: "<SessionToken>", with: "<SessionToken>&#x110000;"), "unknown reference"),
            (200, "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>", "DOCTYPE"),
            (200, String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100), "nested deeper than 32"),
            (200, "<a></b>", "</b> closes <a>"),
            (200, "<a>x</a><b/>", "content after the root element"),
            (200, "<Response/>", "no AssumeRoleWithWebIdentityResult/Credentials"),
            (500, "<html>oops</html>", "answered 500 without an error"),
            (200, good + String(repeating: " ", count: 70_000), "answer over 65536 bytes"),
        ]
        try CredentialsStandIns.write("token", to: tokenFile)
        for c in cases {
            let sts = try HTTPStandIn(always: HTTPStandIn.response(c.status, c.body))
            XCTAssertThrowsError(try WebIdentityCredentials(environment: environment(sts)).resolve(), c.reason) {
                XCTAssertTrue("\($0)".contains(c.reason), "\(c.reason): \($0)")
            }
        }
    }
}
