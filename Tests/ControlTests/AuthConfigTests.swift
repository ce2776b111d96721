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
        let signing = try SigningSetup.credentials(config, file: "f.json", environment: environment).signing
        XCTAssertEqual(Set(signing.keys), ["fn", "bg/blue", "bg/green"])
        XCTAssertEqual(signing["bg/blue"]?.maxBodyBytes, 1024)
        XCTAssertEqual(signing["bg/green"]?.region, "eu-central-1")
        XCTAssertEqual(signing["fn"]?.credentials.current.accessKeyID, "AKID")

        XCTAssertThrowsError(try SigningSetup.credentials(config, file: "f.json", environment: ["AWS_ACCESS_KEY_ID": "AKID"])) { error in
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
        assertError(upstream(#"{ "aws": { "service": "lambda", "region": "eu-west-1" }, "google": { "audience": "https://fn.a.run.app" } }"#),
                    #"upstreams.app.auth.google: "aws" and "google" cannot both be set"#)
        assertError(upstream(#"{}"#), #"upstreams.app.auth: needs "aws" or "google""#)
        assertError(upstream(#"{ "google": { "audience": "fn.a.run.app" } }"#),
                    #"upstreams.app.auth.google.audience: must be the service's http(s) URL (like "https://fn-abc-ew.a.run.app"), got "fn.a.run.app""#)
        assertError(upstream(#"{ "google": { "audience": "https://fn.a.run.app/?a=1&b=2" } }"#), "upstreams.app.auth.google.audience: must be")
        assertError(upstream(#"{ "google": {} }"#), "upstreams.app.auth.google.audience: missing required key")
        assertError(upstream(#"{ "google": { "audience": "https://fn.a.run.app", "clientAuthorization": "keep" } }"#),
                    #"upstreams.app.auth.google.clientAuthorization: must be "move" (sent as X-Forwarded-Authorization) or "drop", got "keep""#)
    }

    func testGoogleOnTheUpstreamAndOnAColor() throws {
        let config = try XCTUnwrap(parse(Doc.make(upstreams: #"""
            { "run": { "endpoints": ["127.0.0.1:9001"], "auth": { "google": { "audience": "https://run-abc-ew.a.run.app" } } },
              "bg": { "live": "blue",
                      "blue": { "endpoints": ["127.0.0.1:9002"] },
                      "green": { "endpoints": ["127.0.0.1:9003"],
                                 "auth": { "google": { "audience": "https://green-abc-ew.a.run.app", "clientAuthorization": "drop" } } } } }
            """#, routes: #"[{ "name": "a", "upstream": "run" }, { "name": "b", "upstream": "bg" }]"#))).config
        XCTAssertEqual(config[upstream: "run"]?.auth(nil)?.google?.audience, "https://run-abc-ew.a.run.app")
        XCTAssertEqual(config[upstream: "run"]?.auth(nil)?.google?.clientAuthorization, .move)
        XCTAssertNil(config[upstream: "bg"]?.auth(.blue))
        XCTAssertEqual(config[upstream: "bg"]?.auth(.green)?.google?.clientAuthorization, .drop)
        // No metadata server on this port: the config is refused, naming each upstream.
        XCTAssertThrowsError(try SigningSetup.credentials(config, file: "f.json", environment: ["GCE_METADATA_HOST": "127.0.0.1:1"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("f.json: upstreams.run.auth.google: cannot get an ID token for https://run-abc-ew.a.run.app: "
                + "metadata server 127.0.0.1:1: cannot connect"), text)
            XCTAssertTrue(text.contains("f.json: upstreams.bg.green.auth.google: "), text)
        }
    }
}
