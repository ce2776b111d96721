// Whole configs end to end: parse, defaults, build, and the snapshot's indexes, thresholds,
// hosts and headers.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
import Routing
@testable import Runtime
import XCTest

final class ConfigRoundTripTests: XCTestCase {
    static func fullConfig(secretEnv: String) -> String {
        """
        // Every feature of the config format.
        {
          "workers": 2,
          "listeners": [ { "address": "127.0.0.1:8080" }, { "address": "[::1]:8080" }, ],
          "limits": { "maxConnections": 500, "maxBodyBytes": 0, "bufferBodyBytes": 65536 },
          "timeouts": { "connectMs": 1500, "drainMs": 5000 },
          "upstreams": {
            "shadow": { "endpoints": ["127.0.0.1:9100"], "maxInFlight": 7, "maxBufferBytes": 65536 },
            "api-v1": { "endpoints": [ "127.0.0.1:9001", { "address": "localhost:9002", "weight": 3 } ] },
            "checkout": {
              "blue":  { "endpoints": ["127.0.0.1:9201"] },
              "green": { "endpoints": ["127.0.0.1:9202"] },
              "live": "green",
              "preview": { "header": "X-Switchyard-Preview", "trustedSources": ["10.0.0.0/8", "::1/128"] },
              "warmup": { "path": "/health", "requests": 3 },
            },
            "api-v2": { "endpoints": ["127.0.0.1:9003"] },
          },
          "routes": [
            {
              "name": "api",
              "match": { "host": ["api.example.com", "*.Example.org"], "pathPrefix": "/api", "methods": ["get", "POST"],
                         "headers": { "X-Env": "staging", "x-beta": "*" } },
              "rewrite": { "stripPrefix": "/api" },
              "split": [ { "variant": "stable", "upstream": "api-v1", "weight": 95 },
                         { "variant": "canary", "upstream": "api-v2", "weight": 5 } ],
              "rules": [ { "cookie": { "beta": "1" }, "variant": "canary" },
                         { "header": { "X-Canary": "always" }, "variant": "canary" } ],
              "override": { "trustedSources": ["127.0.0.1/32"], "secretHeader": "X-QA-Token", "secretEnv": "\(secretEnv)" },
              "sticky": { "maxAgeSeconds": 3600, "key": { "header": "X-User-Id" }, "secretEnv": "\(secretEnv)" },
              "mirror": [ { "upstream": "shadow", "percent": 12.5, "methods": ["*"], "hostSuffix": "-shadow" } ],
            },
            {
              "name": "checkout",
              "match": { "host": "shop.example.com" },
              "rewrite": { "prefix": "/v2" },
              "upstream": "checkout",
              "variantHeader": null,
              "upgrades": ["WebSocket", "my-proto"],
              /* a mirror with every default */
              "mirror": [ { "upstream": "shadow", "percent": 100 } ],
            },
          ],
          "control": { "socket": "/tmp/switchyard-test.sock", "mode": "0640", "stateFile": "/tmp/switchyard-state.json" },
          "admin": { "address": "127.0.0.1:9901", "maxConnections": 16 },
        }
        """
    }

    func testFullConfigParses() throws {
        let loaded = withEnvironment("s3cret-0123456789ab\n") { name in parse(Self.fullConfig(secretEnv: name)) }
        let result = try XCTUnwrap(loaded)
        let config = result.config
        XCTAssertEqual(result.warnings, [])
        XCTAssertEqual(config.workers, 2)
        XCTAssertEqual(config.listeners.map(\.address.description), ["127.0.0.1:8080", "[::1]:8080"])
        XCTAssertEqual(config.limits.maxConnections, 500)
        XCTAssertEqual(config.limits.bufferBodyBytes, 65_536)
        XCTAssertEqual(config.proxySettings.bufferBodyBytes, 65_536)
        XCTAssertEqual(config.limits.maxHeaderBytes, 16_384)
        XCTAssertEqual(config.timeouts.connectMs, 1500)
        XCTAssertEqual(config.timeouts.responseMs, 60_000)
        // Sorted by name, whatever the file order.
        XCTAssertEqual(config.upstreams.map(\.name), ["api-v1", "api-v2", "checkout", "shadow"])
        XCTAssertEqual(config.routes.map(\.name), ["api", "checkout"])

        let apiV1 = try XCTUnwrap(config[upstream: "api-v1"]?.pool(nil))
        XCTAssertEqual(apiV1.endpoints.map(\.address.description), ["127.0.0.1:9001", "localhost:9002"])
        XCTAssertEqual(apiV1.endpoints.map(\.address.written), ["127.0.0.1:9001", "localhost:9002"])
        XCTAssertEqual(apiV1.endpoints.map(\.weight), [1, 3])
        XCTAssertEqual(config[upstream: "shadow"]?.maxInFlight, 7)
        XCTAssertEqual(config[upstream: "api-v1"]?.maxInFlight, 100)
        XCTAssertEqual(config[upstream: "shadow"]?.maxBufferBytes, 65536)
        XCTAssertEqual(config[upstream: "api-v1"]?.maxBufferBytes, 16 << 20, "16 MiB by default")

        let checkout = try XCTUnwrap(config[upstream: "checkout"]?.blueGreen)
        XCTAssertEqual(checkout.live, .green)
        XCTAssertEqual(checkout.previewHeader, "X-Switchyard-Preview")
        XCTAssertEqual(checkout.warmup?.path, "/health")
        XCTAssertEqual(checkout.warmup?.requests, 3)
        XCTAssertEqual(checkout.warmup?.timeoutMs, 5000)

        let api = try XCTUnwrap(config[route: "api"])
        XCTAssertEqual(api.match.hosts, ["api.example.com", "*.example.org"])
        XCTAssertEqual(api.match.methods, ["GET", "POST"])
        XCTAssertEqual(api.match.headers, [Config.HeaderMatch(name: "X-Env", value: "staging"),
                                           Config.HeaderMatch(name: "x-beta", value: nil)])
        XCTAssertEqual(api.rewrite, .stripPrefix("/api"))
        XCTAssertEqual(api.variantHeader, "X-Switchyard-Variant")
        XCTAssertEqual(api.upgrades, ["websocket"])
        let split = try XCTUnwrap(api.split)
        XCTAssertEqual(split.variants, [Config.Variant(name: "stable", upstream: "api-v1", weight: 95),
                                        Config.Variant(name: "canary", upstream: "api-v2", weight: 5)])
        XCTAssertEqual(split.rules.map(\.variant), ["canary", "canary"])
        XCTAssertEqual(split.rules.first?.source, .cookie(name: "beta", value: "1"))
        XCTAssertEqual(split.overrideHeader, "X-Switchyard-Variant")
        XCTAssertEqual(split.overrideTrust.trustedSources, ["127.0.0.1/32"])
        XCTAssertEqual(split.overrideTrust.secretHeader, "X-QA-Token")
        XCTAssertNotNil(split.overrideTrust.secret)
        let sticky = try XCTUnwrap(split.sticky)
        XCTAssertEqual(sticky.cookie, "sy-api")
        XCTAssertEqual(sticky.maxAgeSeconds, 3600)
        XCTAssertEqual(sticky.key, .header("X-User-Id"))
        XCTAssertEqual(sticky.salt, "api")
        XCTAssertEqual(sticky.secret?.bytes, Array("s3cret-0123456789ab".utf8))
        XCTAssertEqual(api.mirrors, [Config.Mirror(upstream: "shadow", percent: 12.5, maxBodyBytes: 1_048_576,
                                                   methods: [], hostSuffix: "-shadow")])

        let checkoutRoute = try XCTUnwrap(config[route: "checkout"])
        XCTAssertEqual(checkoutRoute.target, .upstream("checkout"))
        XCTAssertEqual(checkoutRoute.rewrite, .prefix("/v2"))
        XCTAssertNil(checkoutRoute.variantHeader)
        XCTAssertEqual(checkoutRoute.upgrades, ["websocket", "my-proto"])
        XCTAssertEqual(checkoutRoute.mirrors.first?.methods, ["GET", "HEAD", "OPTIONS"])

        XCTAssertEqual(config.control?.socket, "/tmp/switchyard-test.sock")
        XCTAssertEqual(config.control?.mode, 0o640)
        XCTAssertEqual(config.control?.stateFile, "/tmp/switchyard-state.json")
        XCTAssertEqual(config.admin?.address.description, "127.0.0.1:9901")
    }

    func testFullConfigBuildsSnapshot() throws {
        let loaded = withEnvironment("s3cret-0123456789ab") { name in parse(Self.fullConfig(secretEnv: name)) }
        let config = try XCTUnwrap(loaded).config
        let registry = EndpointRegistry()
        var names = ResolvedNames(required: true)
        names.addresses["localhost:9002"] = [ResolvedAddress(host: "127.0.0.1", port: 9002)]
        let snapshot = try SnapshotBuilder.build(config, version: 7, registry: registry, names: names)

        XCTAssertEqual(snapshot.version, 7)
        XCTAssertEqual(snapshot.upstreams.map(\.name), ["api-v1", "api-v2", "checkout", "shadow"])
        XCTAssertEqual(snapshot.upstreams[3].mirrorMaxInFlight, 7)
        XCTAssertEqual(snapshot.upstreams[3].mirrorMaxBufferBytes, 65536)
        guard case .pool(let apiV1) = snapshot.upstreams[0].kind else { return XCTFail("api-v1 is a pool") }
        XCTAssertEqual(apiV1.endpoints.map(\.address), ["127.0.0.1:9001", "127.0.0.1:9002"])
        XCTAssertEqual(apiV1.endpoints.map(\.weight), [1, 3])
        XCTAssertEqual(apiV1.endpoints.map(\.id), [0, 1])
        XCTAssertEqual(registry.count, 6)
        guard case .blueGreen(let checkout) = snapshot.upstreams[2].kind else { return XCTFail("checkout is blue/green") }
        XCTAssertEqual(checkout.live, .green)
        XCTAssertEqual(checkout.previewHeader, Array("x-switchyard-preview".utf8))
        XCTAssertEqual(checkout.green.endpoints.map(\.address), ["127.0.0.1:9202"])

        let api = snapshot.routes[0]
        XCTAssertEqual(api.name, "api")
        XCTAssertEqual(api.match.hosts, [.exact(Array("api.example.com".utf8)), .suffix(Array(".example.org".utf8))])
        XCTAssertEqual(api.match.pathPrefix, Array("/api".utf8))
        XCTAssertEqual(api.match.methods, [Array("GET".utf8), Array("POST".utf8)])
        XCTAssertEqual(api.match.headers.map(\.name), [Array("x-env".utf8), Array("x-beta".utf8)])
        XCTAssertEqual(api.match.headers.map(\.match), [.equals(Array("staging".utf8)), .present])
        XCTAssertEqual(api.rewrite, .stripPrefix(Array("/api".utf8)))
        XCTAssertEqual(api.variantHeader, Array("X-Switchyard-Variant".utf8))
        XCTAssertEqual(api.upgrades, [Array("websocket".utf8)])
        guard case .split(let split) = api.target else { return XCTFail("api has a split") }
        XCTAssertEqual(split.variants.map(\.name), ["stable", "canary"])
        XCTAssertEqual(split.variants.map(\.upstream), [0, 1])
        XCTAssertEqual(split.thresholds, [9500, 10_000])
        XCTAssertEqual(split.rules, [Rule(source: .cookie(name: Array("beta".utf8), value: Array("1".utf8)), variant: 1),
                                     Rule(source: .header(name: Array("x-canary".utf8), value: Array("always".utf8)), variant: 1)])
        XCTAssertEqual(split.overrideHeader, Array("x-switchyard-variant".utf8))
        XCTAssertEqual(split.overrideTrust.secretHeader, Array("x-qa-token".utf8))
        XCTAssertTrue(split.overrideTrust.sources.contains(ClientAddress("127.0.0.1")!))
        XCTAssertFalse(split.overrideTrust.sources.contains(ClientAddress("127.0.0.2")!))
        let sticky = try XCTUnwrap(split.sticky)
        XCTAssertEqual(sticky.cookieName, Array("sy-api".utf8))
        XCTAssertEqual(sticky.maxAgeSeconds, 3600)
        XCTAssertEqual(sticky.key, .header(Array("x-user-id".utf8)))
        XCTAssertEqual(sticky.salt, Array("api".utf8))
        let signer = try XCTUnwrap(sticky.signer)
        var mac = [UInt8](repeating: 0, count: 32)
        Array("1.42".utf8).withUnsafeBytes { message in mac.withUnsafeMutableBytes { signer(message, $0) } }
        XCTAssertNotEqual(mac, [UInt8](repeating: 0, count: 32))
        XCTAssertEqual(api.mirrors, [Mirror(upstream: 3, percent: 12.5, maxBodyBytes: 1_048_576, methods: [],
                                            hostSuffix: Array("-shadow".utf8))])
        XCTAssertEqual(api.mirrors[0].ppm, 125_000)

        let checkoutRoute = snapshot.routes[1]
        guard case .upstream(let index) = checkoutRoute.target else { return XCTFail("checkout has one upstream") }
        XCTAssertEqual(index, 2)
        XCTAssertNil(checkoutRoute.variantHeader)
        XCTAssertEqual(checkoutRoute.upgrades, [Array("websocket".utf8), Array("my-proto".utf8)])
        XCTAssertEqual(checkoutRoute.mirrors[0].methods, [Array("GET".utf8), Array("HEAD".utf8), Array("OPTIONS".utf8)])
        XCTAssertEqual(checkoutRoute.mirrors[0].ppm, 1_000_000)
    }

    func testCommentsAndTrailingCommasAreAccepted() throws {
        let text = """
        /* leading block comment */
        {
          // line comment
          "listeners": [ { "address": "127.0.0.1:8080", }, ], // trailing comment
          "upstreams": { "app": { "endpoints": [ "127.0.0.1:9001", /* inline */ ], }, },
          "routes": [ { "name": "default", "upstream": "app", }, ],
          /* multi
             line */
        }
        """
        let config = try XCTUnwrap(parse(text)).config
        XCTAssertEqual(config.routes.map(\.name), ["default"])
    }

    func testDefaultsAreFilled() throws {
        let config = try XCTUnwrap(parse(Doc.make())).config
        XCTAssertEqual(config.workers, 0)
        XCTAssertEqual(config.limits, Config.Limits())
        XCTAssertEqual(config.limits.maxConnections, 10_000)
        XCTAssertEqual(config.limits.maxHeaderBytes, 16_384)
        XCTAssertEqual(config.limits.maxHeaders, 100)
        XCTAssertEqual(config.limits.maxUriBytes, 8_192)
        XCTAssertEqual(config.limits.maxBodyBytes, 0)
        XCTAssertEqual(config.limits.bufferBodyBytes, 16_384)
        XCTAssertEqual(config.proxySettings.bufferBodyBytes, 16_384)
        XCTAssertEqual(config.timeouts.connectMs, 2_000)
        XCTAssertEqual(config.timeouts.headerMs, 10_000)
        XCTAssertEqual(config.timeouts.responseMs, 60_000)
        XCTAssertEqual(config.timeouts.idleMs, 60_000)
        XCTAssertEqual(config.timeouts.upstreamIdleMs, 30_000)
        XCTAssertEqual(config.timeouts.drainMs, 10_000)
        XCTAssertNil(config.control)
        XCTAssertNil(config.admin)
        XCTAssertEqual(config.routes[0].match, Config.Match())
        XCTAssertEqual(config.routes[0].variantHeader, "X-Switchyard-Variant")
    }

    func testEmptyControlAndAdminSectionsTakeDefaults() throws {
        let config = try XCTUnwrap(parse(Doc.make(extra: #""control": {}, "admin": {}"#))).config
        XCTAssertEqual(config.control, Config.ControlSocket())
        XCTAssertEqual(config.control?.socket, "/run/switchyard/control.sock")
        XCTAssertEqual(config.control?.mode, 0o600)
        XCTAssertNil(config.control?.stateFile)
        XCTAssertEqual(config.admin?.address.description, "127.0.0.1:9901")
        XCTAssertEqual(config.admin?.maxConnections, 64)
    }

    func testQuickstartConfigIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/quickstart.json").path
        let result = try ConfigLoader.load(path: path)
        XCTAssertEqual(result.warnings, [])
        XCTAssertEqual(result.config.listeners.map(\.address.description), ["127.0.0.1:8080"])
        XCTAssertEqual(result.config.upstreams.map(\.name), ["app"])
        XCTAssertEqual(result.config[upstream: "app"]?.pool(nil)?.endpoints.map(\.address.description),
                       ["127.0.0.1:9001", "127.0.0.1:9002"])
        XCTAssertEqual(result.config.routes.map(\.name), ["default"])
        XCTAssertEqual(result.config.routes[0].match, Config.Match())
        let snapshot = try SnapshotBuilder.build(result.config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.routes.count, 1)
    }

    func testLoadReadsAFileAndNamesItInErrors() throws {
        let good = try TemporaryFile(contents: Doc.make())
        defer { good.remove() }
        XCTAssertEqual(try ConfigLoader.load(path: good.path).config.routes.count, 1)

        let bad = try TemporaryFile(contents: Doc.make(extra: #""workers": -1"#))
        defer { bad.remove() }
        XCTAssertThrowsError(try ConfigLoader.load(path: bad.path)) { error in
            let messages = (error as? ConfigError)?.messages ?? []
            XCTAssertEqual(messages, ["\(bad.path):5: workers: must be between 0 and 256, got -1"])
        }
    }

    func testLoadOfAMissingFileIsAnError() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-missing-\(UUID().uuidString).json").path
        XCTAssertThrowsError(try ConfigLoader.load(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): cannot read: No such file or directory")
        }
    }
}
