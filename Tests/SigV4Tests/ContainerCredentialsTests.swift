// Container credentials (ECS task roles, EKS Pod Identity): the full URI's endpoint asked with
// the authorization token from its file (read on every call) or variable, against a loopback
// stand-in that answers 401 to a wrong token; hosts the SDKs refuse are refused; malformed and
// hostile answers are errors, never traps.
import Foundation
@testable import SigV4
import TestSupport
import XCTest

final class ContainerCredentialsTests: CredentialsTestCase {
    private func uri(_ server: HTTPStandIn) -> String { "http://127.0.0.1:\(server.port)/creds" }

    func testTheTokenFileIsReadOnEveryCallAndWinsOverTheVariable() throws {
        let agent = try CredentialsStandIns.container(token: "pod-token-1", body: CredentialsStandIns.json(key: "ASIAPOD"))
        try CredentialsStandIns.write("pod-token-1", to: tokenFile)
        let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
                   "AWS_CONTAINER_AUTHORIZATION_TOKEN": "the-variable-loses"]
        let provider = ContainerCredentials(environment: env)
        XCTAssertEqual(try provider.resolve(), AWSCredentials(accessKeyID: "ASIAPOD", secretAccessKey: "secret/ASIAPOD", sessionToken: "token+ASIAPOD=",
                                                              expiration: CredentialsStandIns.expiry,
                                                              source: "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI \(uri(agent)))"))
        XCTAssertEqual(agent.requests.first?.method, "GET")

        try CredentialsStandIns.write("pod-token-2", to: tokenFile)   // the agent rotated it
        XCTAssertThrowsError(try provider.resolve(), "the file is read again: the stand-in wants the old token") {
            XCTAssertEqual("\($0)", "container credentials endpoint \(uri(agent)): answered 401: {\"message\":\"bad token\"}")
        }
        XCTAssertEqual(agent.requests.last?.header("Authorization"), "pod-token-2")
    }

    func testTheTokenFromTheVariableAndAMissingToken() throws {
        let agent = try CredentialsStandIns.container(token: "ecs-token", body: CredentialsStandIns.json(key: "ASIATASK"))
        let fromVariable = ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent),
                                                              "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ecs-token"])
        XCTAssertEqual(try fromVariable.resolve()?.accessKeyID, "ASIATASK")
        XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent)]).resolve()) {
            XCTAssertTrue("\($0)".contains("answered 401"), "\($0)")
        }
        XCTAssertNil(agent.requests.last?.header("Authorization"), "no token configured, none sent")
        XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent),
                                                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile]).resolve()) {
            XCTAssertEqual("\($0)", "cannot read the container authorization token file \(tokenFile) (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)")
        }
        try CredentialsStandIns.write("token\r\nX-Injected: 1", to: tokenFile)
        XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent),
                                                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile]).resolve()) {
            XCTAssertTrue("\($0)".contains("holds a line break"), "\($0)")
        }
        XCTAssertNil(try ContainerCredentials(environment: [:]).resolve(), "nothing configured")
    }

    func testHostsTheSDKsRefuseOverPlainHTTP() throws {
        let agent = try CredentialsStandIns.container(token: nil, body: CredentialsStandIns.json(key: "X"))
        for url in ["http://192.0.2.10:\(agent.port)/creds", "http://169.254.169.254/creds", "http://example.com/creds"] {
            XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
                                                                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "secret"]).resolve(), url) {
                XCTAssertTrue("\($0)".hasPrefix("AWS_CONTAINER_CREDENTIALS_FULL_URI: host ") && "\($0)".contains("is not allowed over http"), "\($0)")
            }
        }
        XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "/creds"]).resolve()) {
            XCTAssertEqual("\($0)", "AWS_CONTAINER_CREDENTIALS_FULL_URI \"/creds\" is not an http:// or https:// URL")
        }
        XCTAssertEqual(agent.requests.count, 0, "nothing was sent")
        for host in ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LocalHost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23", "fd00:ec2:0:0::23"] {
            XCTAssertTrue(ContainerCredentials.allowedPlainHost(host), host)
        }
        for host in ["169.254.169.254", "169.254.170.3", "10.0.0.1", "fd00:ec2::254", "::ffff:10.0.0.1", "sts.amazonaws.com", "127.0.0.1.nip.io"] {
            XCTAssertFalse(ContainerCredentials.allowedPlainHost(host), host)
        }
    }

    func testMalformedAndHostileAnswersAreErrors() throws {
        let good = CredentialsStandIns.json(key: "ASIAOK")
        let cases: [(body: String, reason: String)] = [
            (String(good.prefix(40)), "the answer is not JSON"),
            ("", "the answer is not JSON"),
            ("[1, 2]", "not a JSON object"),
            (good.replacingOccurrences(of: "\"AccessKeyId\":\"ASIAOK\",", with: ""), "the answer has no AccessKeyId"),
            (good.replacingOccurrences(of: "\"Token\":\"token+ASIAOK=\",", with: ""), "the answer has no Token"),
            (good.replacingOccurrences(of: "\"ASIAOK\"", with: "1e99999"), "the answer is not JSON"),
            (good.replacingOccurrences(of: "\"ASIAOK\"", with: String(repeating: "9", count: 5000)), "the answer is not JSON"),
            (good.replacingOccurrences(of: "\"ASIAOK\"", with: "12345"), "AccessKeyId is not a string"),
            (good.replacingOccurrences(of: "\"ASIAOK\"", with: "null"), "AccessKeyId is not a string"),
            (good.replacingOccurrences(of: "2026-12-07T21:00:00Z\"", with: "2026-02-30T21:00:00Z\""), "Expiration \"2026-02-30T21:00:00Z\""),
            (good.replacingOccurrences(of: "2026-12-07T21:00:00Z\"", with: "99999999999999999999\""), "not an ISO 8601 UTC time"),
            (good.replacingOccurrences(of: "ASIAOK", with: "ASIA\\r\\nX-Injected: 1"), "AccessKeyId holds a space, a control"),
            (good.replacingOccurrences(of: "ASIAOK", with: "ASIA\\u00e9"), "non-ASCII"),
            (good.replacingOccurrences(of: "\"Success\"", with: "\"AssumeRoleUnauthorizedAccess\""), "AssumeRoleUnauthorizedAccess: no message"),
            (String(repeating: "[", count: 60_000) + String(repeating: "]", count: 60_000), "over 65536 bytes"),
            (String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000), "not JSON"),
        ]
        for c in cases {
            let agent = try CredentialsStandIns.container(token: nil, body: c.body)
            XCTAssertThrowsError(try ContainerCredentials(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": uri(agent)]).resolve(), c.reason) {
                XCTAssertTrue("\($0)".contains(c.reason), "\(c.reason): \($0)")
            }
        }
    }
}
