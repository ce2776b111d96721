// The keys of upstreams that front function endpoints: hostHeader (upstream and color),
// resolveEveryMs, and the upstream `tls` block; and the shipped config/functions.json.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class FunctionConfigTests: XCTestCase {
    func testHostHeaderOnTheUpstreamAndOnAColor() throws {
        let config = try XCTUnwrap(parse(Doc.make(upstreams: #"""
            { "fn": { "endpoints": ["fn.example.net:443"], "hostHeader": "fn.example.net", "resolveEveryMs": 5000 },
              "bg": { "hostHeader": "bg.example.net", "live": "blue",
                      "blue": { "endpoints": ["127.0.0.1:9001"], "hostHeader": "blue.example.net:8443" },
                      "green": { "endpoints": ["127.0.0.1:9002"] } },
              "app": { "endpoints": ["127.0.0.1:9001"] } }
            """#, routes: #"[{ "name": "a", "upstream": "fn" }, { "name": "b", "upstream": "bg" }, { "name": "c", "upstream": "app" }]"#))).config
        let fn = try XCTUnwrap(config[upstream: "fn"])
        XCTAssertEqual(fn.hostHeader(nil), "fn.example.net")
        XCTAssertEqual(fn.resolveEveryMs, 5000)
        XCTAssertEqual(config[upstream: "app"]?.resolveEveryMs, 30_000, "30 s by default")
        XCTAssertNil(config[upstream: "app"]?.hostHeader(nil))
        let bg = try XCTUnwrap(config[upstream: "bg"])
        XCTAssertEqual(bg.hostHeader(.blue), "blue.example.net:8443")
        XCTAssertEqual(bg.hostHeader(.green), "bg.example.net", "a color without its own takes the upstream's")

        // SNI: tls.serverName, else hostHeader's host, else the endpoint's host name.
        let named = try Address(endpoint: "fn.internal:443")
        XCTAssertEqual(fn.sniName(nil, endpointHost: named), "fn.example.net")
        XCTAssertEqual(bg.sniName(.blue, endpointHost: try Address(endpoint: "127.0.0.1:9001")), "blue.example.net")
        var plain = try XCTUnwrap(config[upstream: "app"])
        XCTAssertEqual(plain.sniName(nil, endpointHost: named), "fn.internal")
        XCTAssertNil(plain.sniName(nil, endpointHost: try Address(endpoint: "127.0.0.1:9001")), "no SNI to an address")
        plain.tls = Config.UpstreamTLS(serverName: "api.example.com")
        XCTAssertEqual(plain.sniName(nil, endpointHost: named), "api.example.com")

        // The snapshot carries the effective Host of each pool.
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        let index = try XCTUnwrap(snapshot.upstreamIndex(named: "bg"))
        XCTAssertEqual(snapshot.upstreams[index].pool(.blue).hostHeader, "blue.example.net:8443")
        XCTAssertEqual(snapshot.upstreams[index].pool(.green).hostHeader, "bg.example.net")
        XCTAssertEqual(snapshot.upstreams[index].pool(.blue).hostHeaderName, "blue.example.net", "SNI has no port")
        XCTAssertNil(Routing.Pool(endpoints: [], hostHeader: "10.0.0.1:80").hostHeaderName, "no SNI to an address")
        XCTAssertEqual(snapshot.hostHeader(upstream: index, color: .green).map { Array($0) }, Array("bg.example.net".utf8))
        XCTAssertEqual(snapshot.hostHeader(upstream: index, color: nil).map { Array($0) }, Array("blue.example.net:8443".utf8),
                       "nil is the live color")
        XCTAssertNil(snapshot.hostHeader(upstream: try XCTUnwrap(snapshot.upstreamIndex(named: "app")), color: nil))
    }

    func testBadValuesAreErrorsWithTheirKeyPath() {
        func upstream(_ members: String) -> String {
            Doc.make(upstreams: "{ \"app\": { \"endpoints\": [\"127.0.0.1:9001\"], \(members) } }")
        }
        assertError(upstream(#""hostHeader": "bad host""#), #"upstreams.app.hostHeader: "bad host" is not a host name"#)
        assertError(upstream(#""hostHeader": "api.example.com:99999""#), "upstreams.app.hostHeader: \"api.example.com:99999\": the port must be")
        assertError(upstream(#""hostHeader": """#), "upstreams.app.hostHeader: must not be empty")
        assertError(upstream(#""hostHeader": "[nope]:80""#), "is not an IPv6 address")
        assertError(upstream(#""resolveEveryMs": 10"#), "upstreams.app.resolveEveryMs: must be between 100 and 86400000, got 10")
        assertError(upstream(#""tls": { "cert": "/c.pem" }"#), #"upstreams.app.tls: a client certificate needs both "cert" and "key""#)
        assertError(upstream(#""tls": { "verify": "yes" }"#), "upstreams.app.tls.verify: expected true or false")
        assertError(upstream(#""tls": { "sni": "x" }"#), "upstreams.app.tls.sni: unknown key")
        assertError(upstream(#""tls": { "serverName": "a b" }"#), #"upstreams.app.tls.serverName: "a b" is not a host name"#)
        assertError(Doc.make(upstreams: #"{ "bg": { "live": "blue", "blue": { "endpoints": ["127.0.0.1:9001"], "port": 1 }, "green": { "endpoints": ["127.0.0.1:9002"] } } }"#,
                             routes: #"[{ "name": "r", "upstream": "bg" }]"#), "upstreams.bg.blue.port: unknown key")
    }

    func testUpstreamTLSIsParsed() throws {
        let config = try XCTUnwrap(parse(Doc.make(upstreams: #"""
            { "app": { "endpoints": ["127.0.0.1:9001"], "tls": { "serverName": "api.example.com", "verify": false } } }
            """#))).config
        XCTAssertEqual(config[upstream: "app"]?.tls, Config.UpstreamTLS(serverName: "api.example.com", verify: false))
        XCTAssertEqual(try XCTUnwrap(parse(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "tls": {} } }"#)))
            .config[upstream: "app"]?.tls?.verify, true, "verification is on by default")
        // Files are read when the config loads: a CA file or client certificate that is not
        // there is an error at its key.
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "tls": { "caFile": "/nonexistent/ca.pem" } } }"#),
                    #"upstreams.app.tls.caFile: cannot read "/nonexistent/ca.pem""#)
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "tls": { "cert": "/nonexistent/c.pem", "key": "/nonexistent/c.key" } } }"#),
                    "upstreams.app.tls.cert: cannot read the certificate /nonexistent/c.pem")
    }

    func testTheShippedFunctionsConfig() throws {
        let path = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/functions.json").path
        let config = try ConfigLoader.load(path: path).config
        XCTAssertEqual(config.timeouts.responseMs, 300_000)
        let route = try XCTUnwrap(config[route: "api"])
        XCTAssertEqual(route.split?.variants.map(\.weight), [90, 10])
        XCTAssertNotNil(route.split?.sticky)
        XCTAssertEqual(route.mirrors.map(\.upstream), ["shadow"])
        for name in ["stable", "canary", "shadow"] {
            let upstream = try XCTUnwrap(config[upstream: name])
            let endpoint = try XCTUnwrap(upstream.pool(nil)?.endpoints.first?.address)
            XCTAssertEqual(upstream.hostHeader, endpoint.hostName, name)
            XCTAssertEqual(upstream.tls?.serverName, endpoint.hostName, name)
            XCTAssertEqual(upstream.tls?.verify, true, name)
        }
        for name in ["stable", "shadow"] {
            XCTAssertEqual(config[upstream: name]?.auth(nil)?.aws, Config.AWSSigning(service: "lambda", region: "eu-west-1"), name)
        }
    }
}
