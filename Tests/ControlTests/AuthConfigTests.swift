// `auth.aws` on an upstream and on a color: parsed with its defaults, refused with the key path
// and a reason, and turned into signing policies only with credentials (SigningSetup).
@testable import Config
import Foundation
import Proxy
@testable import Runtime
import XCTest

final class AuthConfigTests: XCTestCase {
    func testOnTheUpstreamAndOnAColorWithDefaults() throws {
        let config = try XCTUnwrap(parse(Doc.make(upstreams: #"""
            { "fn": { "endpoints": ["127.0.0.1:9001"], "auth": { "aws": { "service": "lambda", "region": "eu-west-1" } } },
              "bg": { "live": "blue", "auth": { "aws": { "service": "lambda", "region": "us-east-1", "maxBodyBytes": 1024,
                                                          "clientAuthorization": "drop" } },
                      "blue": { "endpoints": ["127.0.0.1:9002"] },
                      "green": { "endpoints": ["127.0.0.1:9003"], "auth": { "aws": { "service": "execute-api", "region": "eu-central-1" } } } },
              "app": { "endpoints": ["127.0.0.1:9004"] } }
            """#, routes: #"[{ "name": "a", "upstream": "fn" }, { "name": "b", "upstream": "bg" }, { "name": "c", "upstream": "app" }]"#))).config
        let fn = try XCTUnwrap(config[upstream: "fn"]?.auth(nil)?.aws)
        XCTAssertEqual(fn.maxBodyBytes, 6 * 1024 * 1024, "Lambda's synchronous payload limit")
        XCTAssertEqual(fn.clientAuthorization, .move)
        let bg = try XCTUnwrap(config[upstream: "bg"])
        XCTAssertEqual(bg.auth(.blue)?.aws?.region, "us-east-1", "a color without its own takes the upstream's")
        XCTAssertEqual(bg.auth(.blue)?.aws?.clientAuthorization, .drop)
        XCTAssertEqual(bg.auth(.green)?.aws?.service, "execute-api")
        XCTAssertNil(config[upstream: "app"]?.auth(nil))

        let environment = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"]
        let signing = try SigningSetup.signing(config, file: "f.json", environment: environment)
        XCTAssertEqual(Set(signing.keys), ["fn", "bg/blue", "bg/green"])
        XCTAssertEqual(signing["bg/blue"]?.maxBodyBytes, 1024)
        XCTAssertEqual(signing["bg/green"]?.region, "eu-central-1")
        XCTAssertEqual(signing["fn"]?.credentials.accessKeyID, "AKID")

        XCTAssertThrowsError(try SigningSetup.signing(config, file: "f.json", environment: ["AWS_ACCESS_KEY_ID": "AKID"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("f.json: upstreams.fn.auth.aws: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"), text)
            XCTAssertTrue(text.contains("f.json: upstreams.bg.green.auth.aws: "), "a color's own block is named: \(text)")
        }
    }

    func testBadValuesAreErrorsWithTheirKeyPath() {
        func upstream(_ auth: String) -> String {
            Doc.make(upstreams: "{ \"app\": { \"endpoints\": [\"127.0.0.1:9001\"], \"auth\": \(auth) } }")
        }
        assertError(upstream(#"{ "aws": { "region": "eu-west-1" } }"#), "upstreams.app.auth.aws.service: missing required key")
        assertError(upstream(#"{ "aws": { "service": "lambda", "region": "EU West" } }"#),
                    #"upstreams.app.auth.aws.region: must be lower-case letters, digits and "-" (like "eu-west-1"), got "EU West""#)
        assertError(upstream(#"{ "aws": { "service": "lambda", "region": "eu-west-1", "maxBodyBytes": -1 } }"#),
                    "upstreams.app.auth.aws.maxBodyBytes: must be")
        assertError(upstream(#"{ "aws": { "service": "lambda", "region": "eu-west-1", "clientAuthorization": "keep" } }"#),
                    #"upstreams.app.auth.aws.clientAuthorization: must be "move" (sent as X-Forwarded-Authorization) or "drop", got "keep""#)
        assertError(upstream(#"{ "aws": { "service": "lambda", "region": "eu-west-1", "sign": true } }"#), "upstreams.app.auth.aws.sign")
        assertError(upstream(#"{ "gcp": {} }"#), "upstreams.app.auth.gcp")
    }
}
