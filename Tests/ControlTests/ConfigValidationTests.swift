// One test per validation rule: each bad config is rejected with the key path and reason.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
@testable import Runtime
import XCTest

final class ConfigValidationTests: XCTestCase {
    // MARK: Syntax, types, unknown keys

    func testSyntaxErrorNamesLineAndColumn() {
        let messages = errors("{\n  \"workers\": 1\n  \"listeners\": []\n}", file: "config/x.json")
        XCTAssertEqual(messages, [#"config/x.json:3:3: expected ',' or '}' after the value of "workers", found '"'"#])
    }

    func testSyntaxErrors() {
        assertError("", "the file is empty")
        assertError("{ \"a\": 01 }", "leading zeros")
        assertError("{ \"a\": \"x }", "unterminated string")
        assertError("{ /* never closed ", "unterminated /* comment")
        assertError("{ 'a': 1 }", "expected a key in double quotes")
        assertError("{} {}", "after the end of the document")
        assertError("{ \"a\": tru }", "expected a value")
    }

    func testStringEscapesAreDecoded() throws {
        let config = try XCTUnwrap(parse(Doc.route(#""upstream": "app", "match": { "pathPrefix": "/caf\u00e9\/x" }"#))).config
        XCTAssertEqual(config.routes[0].match.pathPrefix, "/café/x")
    }

    func testParserEdgeCases() throws {
        let node = try JSONParser.parse(Array("\u{FEFF}{ \"a\": \"\\ud83d\\ude00\", \"b\": [-1.5e3, 0, true, null] }".utf8))
        guard case .object(let members) = node.value, case .string(let emoji) = members[0].value.value else {
            return XCTFail("expected an object with a string")
        }
        XCTAssertEqual(emoji, "\u{1F600}")
        assertError("{ \"a\": \"\\ud83d\" }", "unpaired surrogate")
        assertError("{ \"a\": \"\\u+123\" }", "expected four hex digits")
        assertError("{ \"a\": \"\\q\" }", "invalid escape")
        assertError(String(repeating: "[", count: 100), "nesting deeper than 64 levels")
        assertError("{ \"a\": [1,,] }", "expected a value, found ','")
        assertError("{ \"a\": \"x\ny\" }", "newline inside quotes")
    }

    func testTheDocumentedExampleParses() throws {
        let text = #"""
        {
          "workers": 0,                         // event loops; 0 = one per core
          "listeners": [ { "address": "127.0.0.1:8080" } ],
          "limits": { "maxConnections": 10000, "maxHeaderBytes": 16384, "maxHeaders": 100, "maxUriBytes": 8192, "maxBodyBytes": 0 },
          "timeouts": { "connectMs": 2000, "headerMs": 10000, "responseMs": 60000, "idleMs": 60000, "upstreamIdleMs": 30000, "drainMs": 10000 },
          "upstreams": {
            "api-v1": { "endpoints": [ "127.0.0.1:9001", { "address": "127.0.0.1:9002", "weight": 3 } ] },
            "shadow": { "endpoints": ["127.0.0.1:9100"], "maxInFlight": 100 },
            "checkout": {
              "blue":  { "endpoints": ["127.0.0.1:9201"] },
              "green": { "endpoints": ["127.0.0.1:9202"] },
              "live": "blue",
              "preview": { "header": "X-Switchyard-Preview", "trustedSources": ["10.0.0.0/8"] },
              "warmup": { "path": "/", "requests": 10, "timeoutMs": 5000 }
            }
          },
          "routes": [
            {
              "name": "api",
              "match": { "host": "api.example.com" /* or "*.example.com" */, "pathPrefix": "/api", "methods": ["GET","POST"], "headers": { "x-env": "staging", "x-beta": "*" } },
              "rewrite": { "stripPrefix": "/api" },
              "upstream": "api-v1"
            }
          ],
          "control": { "socket": "/run/switchyard/control.sock", "mode": "0600", "stateFile": "/var/lib/switchyard/state.json" },
          "admin": { "address": "127.0.0.1:9901" }
        }
        """#
        let result = try XCTUnwrap(parse(text, file: "config/example.json"))
        XCTAssertEqual(result.warnings, ["config/example.json:9: upstreams.checkout: not used by any route (staged?)",
                                         "config/example.json:8: upstreams.shadow: not used by any route (staged?)"].sorted())
        XCTAssertEqual(result.config, try ConfigLoader.parse(data: Data(text.utf8), file: "other.json").config)
    }

    func testRootMustBeAnObject() {
        XCTAssertEqual(errors("[]"), ["test.json:1: expected an object, got an array"])
    }

    func testTypeErrorsSayWhatWasExpected() {
        assertError(Doc.make(extra: #""workers": "4""#), "workers: expected an integer, got a string")
        assertError(Doc.make(extra: #""workers": 1.5"#), "workers: expected an integer, got 1.5")
        assertError(Doc.make(listeners: #"{ "address": "127.0.0.1:8080" }"#), "listeners: expected an array, got an object")
        assertError(Doc.make(listeners: #"[ "127.0.0.1:8080" ]"#), "listeners[0]: expected an object, got a string")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "maxInFlight": true } }"#),
                    "upstreams.app.maxInFlight: expected an integer, got a boolean")
        assertError(Doc.route(#""upstream": 5"#), "routes[0].upstream: expected a string, got the number 5")
        assertError(Doc.make(extra: #""control": { "mode": 600 }"#),
                    #"control.mode: expected an octal string like "0600", got the number 600"#)
        assertError(Doc.route(#""upstream": "app", "variantHeader": 1"#), "routes[0].variantHeader: expected a string")
    }

    func testUnknownKeysAreErrorsWithSuggestions() {
        assertError(Doc.make(extra: #""limits": { "maxConection": 5 }"#),
                    #"limits.maxConection: unknown key (did you mean "maxConnections"?)"#)
        assertError(Doc.make(extra: #""route": []"#), #"route: unknown key (did you mean "routes"?)"#)
        assertError(Doc.make(extra: #""frobnicate": 1"#), "frobnicate: unknown key")
        XCTAssertFalse(errors(Doc.make(extra: #""frobnicate": 1"#)).contains { $0.contains("did you mean") })
        assertError(Doc.route(#""upstream": "app", "match": { "path": "/x" }"#),
                    #"routes[0].match.path: unknown key (did you mean "pathPrefix"?)"#)
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": [{ "address": "127.0.0.1:9001", "wieght": 2 }] } }"#),
                    #"upstreams.app.endpoints[0].wieght: unknown key (did you mean "weight"?)"#)
    }

    func testDuplicateKeysAreErrors() {
        assertError("{ \"workers\": 1,\n \"workers\": 2 }", "test.json:2: workers: duplicate key (first at line 1)")
    }

    func testRequiredSections() {
        let messages = errors("{}")
        XCTAssertEqual(messages, ["test.json:1: listeners: missing required key",
                                  "test.json:1: upstreams: missing required key",
                                  "test.json:1: routes: missing required key"])
        assertError(Doc.make(listeners: "[]"), "listeners: must list at least one listener")
        assertError(Doc.make(upstreams: "{}", routes: "[]"), "upstreams: must name at least one upstream")
        assertError(Doc.make(routes: "[]"), "routes: must list at least one route")
    }

    // MARK: Ranges

    func testRanges() {
        assertError(Doc.make(extra: #""workers": 257"#), "workers: must be between 0 and 256, got 257")
        assertError(Doc.make(extra: #""limits": { "maxConnections": 0 }"#), "limits.maxConnections: must be between 1 and 100000000, got 0")
        assertError(Doc.make(extra: #""admin": { "maxConnections": 0 }"#), "admin.maxConnections: must be between 1 and 65536, got 0")
        assertError(Doc.make(extra: #""limits": { "maxHeaders": -5 }"#), "limits.maxHeaders: must be at least 1, got -5")
        assertError(Doc.make(extra: #""limits": { "maxBodyBytes": -1 }"#), "limits.maxBodyBytes: must be at least 0, got -1")
        assertError(Doc.make(extra: #""limits": { "bufferBodyBytes": 16777217 }"#),
                    "limits.bufferBodyBytes: must be between 0 and 16777216, got 16777217")
        assertError(Doc.make(extra: #""timeouts": { "connectMs": 0 }"#), "timeouts.connectMs: must be between 1 and 604800000, got 0")
        assertError(Doc.make(extra: #""timeouts": { "drainMs": 99999999999999999999 }"#), "timeouts.drainMs: 99999999999999999999 is out of range")
        XCTAssertNotNil(parse(Doc.make(extra: #""workers": 0, "limits": { "maxBodyBytes": 0 }"#)))
    }

    // MARK: Addresses

    func testAddressErrors() {
        func listener(_ address: String) -> String { Doc.make(listeners: "[{ \"address\": \"\(address)\" }]") }
        assertError(listener("127.0.0.1"), "listeners[0].address: \"127.0.0.1\": missing port")
        func endpoint(_ address: String) -> String { Doc.make(upstreams: "{ \"app\": { \"endpoints\": [\"\(address)\"] } }") }
        assertError(endpoint("127.0.0.1:0"), "upstreams.app.endpoints[0]: \"127.0.0.1:0\": port must be a number between 1 and 65535")
        assertError(endpoint("127.0.0.1:65536"), "port must be a number between 1 and 65535")
        assertError(listener("127.0.0.1:65536"), "port must be a number between 0 and 65535")
        assertError(listener("127.0.0.1:http"), "port must be a number between 0 and 65535")
        assertError(listener(":8080"), "missing host")
        assertError(listener("::1:8080"), "put an IPv6 address in brackets")
        assertError(listener("[::1:8080"), "missing ']'")
        assertError(listener("[nope]:8080"), "\"nope\" is not an IPv6 address")
        assertError(listener("bad host:80"), "invalid host \"bad host\"")
    }

    func testListenersMayAskForAnyFreePort() throws {
        let config = try XCTUnwrap(parse(Doc.make(listeners: #"[{ "address": "127.0.0.1:0" }, { "address": "127.0.0.1:0" }]"#))).config
        XCTAssertEqual(config.listeners.map(\.address.port), [0, 0])
    }

    func testIPv6Addresses() throws {
        let config = try XCTUnwrap(parse(Doc.make(listeners: #"[{ "address": "[::1]:8080" }, { "address": "[0:0::1]:8081" }]"#,
                                                  upstreams: #"{ "app": { "endpoints": ["[::1]:9001"] } }"#))).config
        XCTAssertEqual(config.listeners[0].address.host, "::1")
        XCTAssertEqual(config.listeners[0].address.port, 8080)
        XCTAssertTrue(config.listeners[0].address.isIPv6)
        XCTAssertEqual(config.listeners[0].address.description, "[::1]:8080")
        XCTAssertEqual(config.listeners[1].address.description, "[::1]:8081", "numeric form is canonical")
        XCTAssertEqual(config.listeners[1].address.written, "[0:0::1]:8081")
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        XCTAssertEqual(snapshot.upstreams[0].pool(nil).endpoints[0].host, "::1")
        XCTAssertEqual(snapshot.upstreams[0].pool(nil).endpoints[0].address, "[::1]:9001")
    }

    func testEndpointHostNamesAreKeptAsWrittenAndResolvedWhenBuilt() throws {
        let config = try XCTUnwrap(parse(Doc.make(upstreams: #"{ "app": { "endpoints": ["localhost:9001"] } }"#))).config
        let address = try XCTUnwrap(config.upstreams[0].pool(nil)?.endpoints[0].address)
        XCTAssertEqual(address.host, "localhost")
        XCTAssertEqual(address.hostName, "localhost")
        XCTAssertNil(address.numericHost, "no DNS while parsing")
        XCTAssertEqual(address.description, "localhost:9001")
        var names = ResolvedNames(required: true)
        names.resolveMissing(config.nameEndpoints, with: SystemResolver.resolve)
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry(), names: names)
        let endpoints = snapshot.upstreams[0].pool(nil).endpoints
        XCTAssertTrue(endpoints.contains { $0.host == "127.0.0.1" && $0.port == 9001 }, "\(endpoints)")
        XCTAssertTrue(endpoints.allSatisfy { $0.hostName == "localhost" })
    }

    func testUnresolvableHostNameIsAWarningForCheckOnly() throws {
        let text = Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001", "no-such-host.invalid:9002"] } }"#)
        // Parsing alone asks no DNS: no warning.
        XCTAssertEqual(try XCTUnwrap(parse(text)).warnings, [])
        let checked = try ConfigLoader.parse(bytes: Array(text.utf8), file: "test.json", resolvingNames: SystemResolver.resolve)
        XCTAssertEqual(checked.warnings.count, 1, "\(checked.warnings)")
        XCTAssertTrue(checked.warnings[0].hasPrefix(#"test.json:3: upstreams.app.endpoints[1]: cannot resolve "no-such-host.invalid""#),
                      checked.warnings[0])
        // A snapshot for `check` leaves the name out; one for `run` refuses it.
        _ = try SnapshotBuilder.build(checked.config, version: 1, registry: EndpointRegistry())
        var names = ResolvedNames(required: true)
        names.resolveMissing(checked.config.nameEndpoints, with: SystemResolver.resolve)
        XCTAssertThrowsError(try SnapshotBuilder.build(checked.config, version: 1, registry: EndpointRegistry(), names: names)) { error in
            XCTAssertTrue("\(error)".contains(#"upstreams.app.endpoints[1]: cannot resolve "no-such-host.invalid""#), "\(error)")
        }
    }

    func testDuplicateListenerAndAdminAddress() {
        assertError(Doc.make(listeners: #"[{ "address": "127.0.0.1:8080" }, { "address": "localhost:8080" }]"#),
                    "listeners[1]: duplicate listener address 127.0.0.1:8080 (also listeners[0])")
        assertError(Doc.make(extra: #""admin": { "address": "127.0.0.1:8080" }"#),
                    "admin.address: 127.0.0.1:8080 is also listeners[0]")
    }

    // MARK: Upstreams

    func testEndpointRules() {
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": [] } }"#), "upstreams.app.endpoints: must list at least one endpoint")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001", "127.0.0.1:9001"] } }"#),
                    "upstreams.app.endpoints[1]: duplicate endpoint 127.0.0.1:9001 (also [0])")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": [{ "address": "127.0.0.1:9001", "weight": 0 }] } }"#),
                    "upstreams.app.endpoints[0].weight: must be between 1 and 1000000, got 0")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": [{ "weight": 2 }] } }"#),
                    "upstreams.app.endpoints[0].address: missing required key")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": [9001] } }"#),
                    #"upstreams.app.endpoints[0]: expected an address string or an object with "address", got the number 9001"#)
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "maxInFlight": 0 } }"#),
                    "upstreams.app.maxInFlight: must be between 1 and 1000000, got 0")
        assertError(Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "maxBufferBytes": -1 } }"#),
                    "upstreams.app.maxBufferBytes: must be between 1 and 1099511627776, got -1")
        assertError(Doc.make(upstreams: #"{ "a b": { "endpoints": ["127.0.0.1:9001"] } }"#),
                    #"upstreams["a b"]: invalid upstream name"#)
    }

    func testUpstreamKindRules() {
        let both = #"{ "app": { "endpoints": ["127.0.0.1:9001"], "blue": { "endpoints": ["127.0.0.1:9002"] } } }"#
        assertError(Doc.make(upstreams: both), #"upstreams.app: has both "endpoints" and "blue"/"green"; use one"#)
        assertError(Doc.make(upstreams: #"{ "app": {} }"#), #"upstreams.app: needs "endpoints", or "blue" and "green""#)
        let blueOnly = #"{ "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "live": "blue" } }"#
        assertError(Doc.make(upstreams: blueOnly), "upstreams.app.green: missing required key")
        let noLive = #"{ "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": ["127.0.0.1:9002"] } } }"#
        assertError(Doc.make(upstreams: noLive), "upstreams.app.live: missing required key")
        let red = #"{ "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": ["127.0.0.1:9002"] }, "live": "red" } }"#
        assertError(Doc.make(upstreams: red), #"upstreams.app.live: must be "blue" or "green", got "red""#)
        let emptyGreen = #"{ "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": [] }, "live": "blue" } }"#
        assertError(Doc.make(upstreams: emptyGreen), "upstreams.app.green.endpoints: must list at least one endpoint")
        let extraKey = #"{ "app": { "blue": { "endpoints": ["127.0.0.1:9001"], "live": "x" }, "green": { "endpoints": ["127.0.0.1:9002"] }, "live": "blue" } }"#
        assertError(Doc.make(upstreams: extraKey), "upstreams.app.blue.live: unknown key")
    }

    func testPreviewAndWarmupOnlyOnBlueGreen() {
        let preview = #"{ "app": { "endpoints": ["127.0.0.1:9001"], "preview": { "header": "X-P" }, "warmup": {}, "live": "blue", "drainTunnelsMs": 1000 } }"#
        let messages = errors(Doc.make(upstreams: preview))
        for key in ["preview", "warmup", "live", "drainTunnelsMs"] {
            XCTAssertTrue(messages.contains { $0.contains("upstreams.app.\(key): only allowed on a blue/green upstream") }, key)
        }
    }

    func testBlueGreenDefaultsAndChecks() throws {
        let upstreams = #"""
        { "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": ["127.0.0.1:9002"] },
                   "live": "blue", "preview": { "trustedSources": [] }, "warmup": {} } }
        """#
        let bg = try XCTUnwrap(parse(Doc.make(upstreams: upstreams))?.config.upstreams[0].blueGreen)
        XCTAssertEqual(bg.previewHeader, "X-Switchyard-Preview")
        XCTAssertEqual(bg.previewTrust, Config.Trust())
        XCTAssertEqual(bg.warmup, Config.Warmup())
        XCTAssertEqual(bg.warmup?.path, "/")
        XCTAssertEqual(bg.warmup?.requests, 10)
        XCTAssertEqual(bg.warmup?.timeoutMs, 5000)
        XCTAssertEqual(bg.drainTunnelsMs, 0, "tunnels are never closed by a flip unless asked")
        let bad = #"""
        { "app": { "blue": { "endpoints": ["127.0.0.1:9001"] }, "green": { "endpoints": ["127.0.0.1:9002"] },
                   "live": "blue", "preview": { "header": "Bad Header", "trustedSources": [] }, "warmup": { "path": "health", "requests": 0 },
                   "drainTunnelsMs": 86400001 } }
        """#
        let messages = errors(Doc.make(upstreams: bad))
        XCTAssertTrue(messages.contains { $0.contains(#"upstreams.app.preview.header: "Bad Header" is not a valid header name"#) })
        XCTAssertTrue(messages.contains { $0.contains(#"upstreams.app.warmup.path: must start with "/""#) })
        XCTAssertTrue(messages.contains { $0.contains("upstreams.app.warmup.requests: must be between 1 and 1000000, got 0") })
        XCTAssertTrue(messages.contains { $0.contains("upstreams.app.drainTunnelsMs: must be between 0 and 86400000, got 86400001") }, "\(messages)")
    }

    func testUnusedUpstreamIsAWarning() throws {
        let upstreams = #"{ "app": { "endpoints": ["127.0.0.1:9001"] }, "staged": { "endpoints": ["127.0.0.1:9002"] } }"#
        let result = try XCTUnwrap(parse(Doc.make(upstreams: upstreams)))
        XCTAssertEqual(result.warnings, ["test.json:3: upstreams.staged: not used by any route (staged?)"])
    }

    // MARK: Routes

    func testRouteNames() {
        assertError(Doc.make(routes: #"[{ "upstream": "app" }]"#), "routes[0].name: missing required key")
        assertError(Doc.make(routes: #"[{ "name": "", "upstream": "app" }]"#), "routes[0].name: must not be empty")
        assertError(Doc.make(routes: #"[{ "name": "a b", "upstream": "app" }]"#), "routes[0].name: invalid route name")
        assertError(Doc.make(routes: #"[{ "name": "x", "upstream": "app" }, { "name": "x", "upstream": "app" }]"#),
                    #"routes[1].name: duplicate route name "x" (also routes[0])"#)
    }

    func testRouteNeedsExactlyOneOfUpstreamAndSplit() {
        assertError(Doc.route(#""upstream": "app", "split": [{ "variant": "a", "upstream": "app", "weight": 1 }]"#),
                    #"routes[0]: has both "upstream" and "split"; use one"#)
        assertError(Doc.route(#""match": {}"#), #"routes[0]: needs "upstream" or "split""#)
    }

    func testUnknownUpstreamWithSuggestion() {
        let text = Doc.make(upstreams: #"{ "api-v1": { "endpoints": ["127.0.0.1:9001"] }, "api-v2": { "endpoints": ["127.0.0.1:9002"] } }"#,
                            routes: #"""
                            [{ "name": "a", "upstream": "api-v1" },
                             { "name": "b", "split": [{ "variant": "stable", "upstream": "api-v3", "weight": 1 }] }]
                            """#)
        let messages = errors(text, file: "config/x.json")
        XCTAssertEqual(messages, [#"config/x.json:5: routes[1].split[0].upstream: unknown upstream "api-v3" (did you mean "api-v1"?)"#])
        assertError(Doc.route(#""upstream": "ap""#), #"routes[0].upstream: unknown upstream "ap" (did you mean "app"?)"#)
        let far = errors(Doc.route(#""upstream": "completely-different""#))
        XCTAssertEqual(far.count, 1)
        XCTAssertTrue(far[0].hasSuffix(#"routes[0].upstream: unknown upstream "completely-different""#), far[0])
    }

    func testMatchRules() throws {
        assertError(Doc.route(#""upstream": "app", "match": { "host": "api.example.com:8080" }"#), "routes[0].match.host: \"api.example.com:8080\" is not a host")
        assertError(Doc.route(#""upstream": "app", "match": { "host": ["ok.example.com", "*"] }"#), "routes[0].match.host[1]: \"*\" is not a host")
        assertError(Doc.route(#""upstream": "app", "match": { "host": [] }"#), "routes[0].match.host: must not be empty")
        assertError(Doc.route(#""upstream": "app", "match": { "pathPrefix": "api" }"#), #"routes[0].match.pathPrefix: must start with "/""#)
        assertError(Doc.route(#""upstream": "app", "match": { "methods": ["GET", "B@D"] }"#), #"routes[0].match.methods[1]: "B@D" is not a valid method"#)
        assertError(Doc.route(#""upstream": "app", "match": { "headers": { "x bad": "1" } }"#), #"routes[0].match.headers["x bad"]: "x bad" is not a valid header name"#)
        assertError(Doc.route(#""upstream": "app", "match": { "headers": { "x-a": 1 } }"#), "routes[0].match.headers.x-a: expected a string")
        let match = try XCTUnwrap(parse(Doc.route(#""upstream": "app", "match": { "host": "*.Example.COM" }"#))).config.routes[0].match
        XCTAssertEqual(match.hosts, ["*.example.com"])
    }

    func testRewriteRules() {
        assertError(Doc.route(#""upstream": "app", "rewrite": {}"#), #"routes[0].rewrite: needs "stripPrefix" or "prefix""#)
        assertError(Doc.route(#""upstream": "app", "rewrite": { "stripPrefix": "/a", "prefix": "/b" }"#),
                    #"routes[0].rewrite: has both "stripPrefix" and "prefix"; use one"#)
        assertError(Doc.route(#""upstream": "app", "rewrite": { "prefix": "v2" }"#), #"routes[0].rewrite.prefix: must start with "/""#)
    }

    func testUpgradeRules() throws {
        let messages = errors(Doc.route(#""upstream": "app", "upgrades": ["websocket", "H2C"]"#), file: "config/x.json")
        XCTAssertEqual(messages, ["config/x.json:5: routes[0].upgrades[1]: h2c is never tunnelled: its tunnel would bypass"
                                  + " routing, header sanitising and the access log"])
        assertError(Doc.route(#""upstream": "app", "upgrades": ["websocket/13"]"#),
                    #"routes[0].upgrades[0]: "websocket/13" is not a protocol name (a token, without "/version")"#)
        assertError(Doc.route(#""upstream": "app", "upgrades": ["my-proto", "My-Proto"]"#),
                    #"routes[0].upgrades[1]: "My-Proto" is listed twice (names compare case-insensitively)"#)
        assertError(Doc.route(#""upstream": "app", "upgrades": "websocket""#), "routes[0].upgrades: expected an array")
        let routes = try XCTUnwrap(parse(Doc.make(routes: #"""
            [{ "name": "a", "upstream": "app", "upgrades": [] }, { "name": "b", "upstream": "app", "upgrades": ["WebSocket", "my-proto"] },
             { "name": "c", "upstream": "app" }]
            """#))).config.routes
        XCTAssertEqual(routes.map(\.upgrades), [[], ["websocket", "my-proto"], ["websocket"]])
    }

    func testHeaderNameOptions() throws {
        assertError(Doc.route(#""upstream": "app", "variantHeader": "X Variant""#),
                    #"routes[0].variantHeader: "X Variant" is not a valid header name"#)
        let split = #""split": [{ "variant": "a", "upstream": "app", "weight": 1 }]"#
        assertError(Doc.route(split + #", "override": { "header": "X:Y", "trustedSources": [] }"#),
                    #"routes[0].override.header: "X:Y" is not a valid header name"#)
        let route = try XCTUnwrap(parse(Doc.route(split + #", "override": null, "variantHeader": "X-V""#))).config.routes[0]
        XCTAssertNil(route.split?.overrideHeader)
        XCTAssertEqual(route.variantHeader, "X-V")
        let plain = try XCTUnwrap(parse(Doc.route(split))).config.routes[0]
        XCTAssertNil(plain.split?.overrideHeader, "the override is opt-in")
    }

    // MARK: Splits and rules

    func testSplitRules() {
        assertError(Doc.route(#""split": []"#), "routes[0].split: must list at least one variant")
        assertError(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": 1 }, { "variant": "a", "upstream": "api-v2", "weight": 1 }]"#),
                    #"routes[0].split[1].variant: duplicate variant "a" (also split[0])"#)
        assertError(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": -1 }]"#),
                    "routes[0].split[0].weight: must be between 0 and 1000000, got -1")
        assertError(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": 2.5 }]"#),
                    "routes[0].split[0].weight: expected an integer, got 2.5")
        assertError(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": 0 }, { "variant": "b", "upstream": "app", "weight": 0 }]"#),
                    "routes[0].split: the total weight must be greater than 0")
        assertError(Doc.route(#""split": [{ "upstream": "app", "weight": 1 }]"#), "routes[0].split[0].variant: missing required key")
        assertError(Doc.route(#""split": [{ "variant": "a", "upstream": "app" }]"#), "routes[0].split[0].weight: missing required key")
        let many = (0..<65).map { #"{ "variant": "v\#($0)", "upstream": "app", "weight": 1 }"# }.joined(separator: ",")
        assertError(Doc.route(#""split": [\#(many)]"#), "routes[0].split: at most 64 variants, got 65")
        let sixtyFour = (0..<64).map { #"{ "variant": "v\#($0)", "upstream": "app", "weight": 1 }"# }.joined(separator: ",")
        XCTAssertNotNil(parse(Doc.route(#""split": [\#(sixtyFour)], "mirror": [{ "upstream": "shadow", "percent": 1 }]"#)))
    }

    func testVariantWithZeroWeightIsAllowed() throws {
        let config = try XCTUnwrap(parse(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": 1 }, { "variant": "b", "upstream": "api-v2", "weight": 0 }], "mirror": [{ "upstream": "shadow", "percent": 1 }]"#))).config
        XCTAssertEqual(config.routes[0].split?.variants.map(\.weight), [1, 0])
    }

    func testRuleRules() {
        let split = #""split": [{ "variant": "stable", "upstream": "app", "weight": 1 }, { "variant": "canary", "upstream": "api-v2", "weight": 1 }], "#
        assertError(Doc.route(split + #""rules": [{ "cookie": { "beta": "1" }, "variant": "canry" }]"#),
                    #"routes[0].rules[0].variant: unknown variant "canry" (did you mean "canary"?)"#)
        assertError(Doc.route(split + #""rules": [{ "cookie": { "beta": "1" }, "header": { "x": "1" }, "variant": "canary" }]"#),
                    #"routes[0].rules[0]: has both "cookie" and "header"; use one"#)
        assertError(Doc.route(split + #""rules": [{ "variant": "canary" }]"#), #"routes[0].rules[0]: needs "cookie" or "header""#)
        assertError(Doc.route(split + #""rules": [{ "cookie": { "a": "1", "b": "2" }, "variant": "canary" }]"#),
                    "routes[0].rules[0].cookie: needs exactly one name: value pair")
        assertError(Doc.route(split + #""rules": [{ "header": {}, "variant": "canary" }]"#),
                    "routes[0].rules[0].header: needs exactly one name: value pair")
        assertError(Doc.route(split + #""rules": [{ "header": { "x y": "1" }, "variant": "canary" }]"#),
                    #"routes[0].rules[0].header: "x y" is not a valid header name"#)
        assertError(Doc.route(split + #""rules": [{ "cookie": { "beta": "a;b" }, "variant": "canary" }]"#),
                    #"routes[0].rules[0].cookie: "a;b" is not a valid cookie value"#)
    }

    func testSplitOnlyOptionsNeedASplit() {
        let messages = errors(Doc.route(#""upstream": "app", "rules": [], "sticky": {}, "override": {}"#))
        for key in ["rules", "sticky", "override"] {
            XCTAssertTrue(messages.contains { $0.contains("routes[0].\(key): only allowed with \"split\"") }, key)
        }
    }

    // MARK: Sticky

    private let split = #""split": [{ "variant": "a", "upstream": "app", "weight": 1 }, { "variant": "b", "upstream": "api-v2", "weight": 1 }], "mirror": [{ "upstream": "shadow", "percent": 1 }], "#

    func testStickyDefaults() throws {
        let sticky = try XCTUnwrap(parse(Doc.route(split + #""sticky": {}"#))?.config.routes[0].split?.sticky)
        XCTAssertEqual(sticky, Config.Sticky(cookie: "sy-r", maxAgeSeconds: 604_800, key: nil, salt: "r", secret: nil))
        let custom = try XCTUnwrap(parse(Doc.route(split + #""sticky": { "cookie": "exp", "salt": "checkout-exp-3", "key": { "cookie": "session" } }"#))?.config.routes[0].split?.sticky)
        XCTAssertEqual(custom.cookie, "exp")
        XCTAssertEqual(custom.salt, "checkout-exp-3")
        XCTAssertEqual(custom.key, .cookie("session"))
    }

    func testStickyRules() {
        assertError(Doc.route(split + #""sticky": { "cookie": "bad cookie" }"#), #"routes[0].sticky.cookie: "bad cookie" is not a valid cookie name"#)
        assertError(Doc.route(split + #""sticky": { "maxAgeSeconds": 0 }"#), "routes[0].sticky.maxAgeSeconds: must be between 1 and 2147483647, got 0")
        assertError(Doc.route(split + #""sticky": { "key": {} }"#), #"routes[0].sticky.key: needs "header" or "cookie""#)
        assertError(Doc.route(split + #""sticky": { "key": { "header": "X-User", "cookie": "s" } }"#),
                    #"routes[0].sticky.key: has both "header" and "cookie"; use one"#)
        assertError(Doc.route(split + #""sticky": { "key": { "header": "X User" } }"#), #"routes[0].sticky.key.header: "X User" is not a valid header name"#)
        assertError(Doc.route(split + #""sticky": { "secretFile": "/x", "secretEnv": "Y" }"#),
                    #"routes[0].sticky: has both "secretFile" and "secretEnv"; use one"#)
    }

    func testSecretFile() throws {
        let file = try TemporaryFile(contents: "file-secret-0123456789\r\n", suffix: ".key")
        defer { file.remove() }
        let sticky = try XCTUnwrap(parse(Doc.route(split + "\"sticky\": { \"secretFile\": \"\(file.path)\" }"))?.config.routes[0].split?.sticky)
        XCTAssertEqual(sticky.secret, Config.Secret(source: .file(file.path), bytes: Array("file-secret-0123456789".utf8)))
        XCTAssertEqual("\(sticky.secret!)", "secretFile \(file.path)", "printing never shows the secret")

        let empty = try TemporaryFile(contents: "\n", suffix: ".key")
        defer { empty.remove() }
        assertError(Doc.route(split + "\"sticky\": { \"secretFile\": \"\(empty.path)\" }"), "routes[0].sticky.secretFile: \"\(empty.path)\" is empty")
        let short = try TemporaryFile(contents: "x\n", suffix: ".key")
        assertError(Doc.route(split + "\"sticky\": { \"secretFile\": \"\(short.path)\" }"),
                    "routes[0].sticky.secretFile: \"\(short.path)\" holds 1 byte(s); a secret needs at least 16 (128 bits), e.g. `openssl rand -hex 32 > \(short.path)`")
        let missing = empty.path + ".missing"
        assertError(Doc.route(split + "\"sticky\": { \"secretFile\": \"\(missing)\" }"),
                    "routes[0].sticky.secretFile: cannot read \"\(missing)\": No such file or directory")
    }

    func testSecretEnv() throws {
        try withEnvironment("env-secret-0123456789\n") { name in
            let sticky = try XCTUnwrap(parse(Doc.route(split + "\"sticky\": { \"secretEnv\": \"\(name)\" }"))?.config.routes[0].split?.sticky)
            XCTAssertEqual(sticky.secret, Config.Secret(source: .environment(name), bytes: Array("env-secret-0123456789".utf8)))
        }
        withEnvironment("fifteen-bytes!!") { name in
            assertError(Doc.route(split + "\"sticky\": { \"secretEnv\": \"\(name)\" }"),
                        "routes[0].sticky.secretEnv: environment variable \(name) holds 15 byte(s); a secret needs at least 16 (128 bits), e.g. the output of `openssl rand -hex 32`")
        }
        withEnvironment("") { name in
            assertError(Doc.route(split + "\"sticky\": { \"secretEnv\": \"\(name)\" }"), "routes[0].sticky.secretEnv: environment variable \(name) is empty")
        }
        withEnvironment(nil) { name in
            assertError(Doc.route(split + "\"sticky\": { \"secretEnv\": \"\(name)\" }"), "routes[0].sticky.secretEnv: environment variable \(name) is not set")
        }
    }

    // MARK: Mirrors

    func testMirrorRules() throws {
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadw", "percent": 1 }]"#),
                    #"routes[0].mirror[0].upstream: unknown upstream "shadw" (did you mean "shadow"?)"#)
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 0 }]"#),
                    "routes[0].mirror[0].percent: must be greater than 0 and at most 100, got 0")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 100.5 }]"#),
                    "routes[0].mirror[0].percent: must be greater than 0 and at most 100, got 100.5")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow" }]"#), "routes[0].mirror[0].percent: missing required key")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 1, "maxBodyBytes": -1 }]"#),
                    "routes[0].mirror[0].maxBodyBytes: must be at least 0, got -1")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 1, "methods": [] }]"#),
                    "routes[0].mirror[0].methods: must not be empty")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 1, "methods": ["*", "GET"] }]"#),
                    #"routes[0].mirror[0].methods: "*" means every method and stands alone"#)
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 1, "hostSuffix": "/x" }]"#),
                    "routes[0].mirror[0].hostSuffix: may only contain")
        assertError(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "shadow", "percent": 1 }, { "upstream": "shadow", "percent": 2 }]"#),
                    #"routes[0].mirror[1].upstream: duplicate mirror to "shadow" (also mirror[0])"#)
        let upstreams = (0..<65).map { #""m\#($0)": { "endpoints": ["127.0.0.1:\#(10_000 + $0)"] }"# }.joined(separator: ",")
        let mirrors = (0..<65).map { #"{ "upstream": "m\#($0)", "percent": 1 }"# }.joined(separator: ",")
        assertError(Doc.route(#""upstream": "m0", "mirror": [\#(mirrors)]"#, upstreams: "{\(upstreams)}"),
                    "routes[0].mirror: at most 64 mirrors, got 65")

        let mirror = try XCTUnwrap(parse(Doc.route(#""split": [{ "variant": "a", "upstream": "app", "weight": 1 }, { "variant": "b", "upstream": "api-v2", "weight": 1 }], "mirror": [{ "upstream": "shadow", "percent": 0.01, "methods": ["get", "post"] }]"#))?.config.routes[0].mirrors[0])
        XCTAssertEqual(mirror.percent, 0.01)
        XCTAssertEqual(mirror.methods, ["GET", "POST"])
        XCTAssertEqual(mirror.maxBodyBytes, 1_048_576)
    }

    func testMirrorToTheRoutesOwnUpstreamIsAWarning() throws {
        let result = try XCTUnwrap(parse(Doc.route(#""upstream": "app", "mirror": [{ "upstream": "app", "percent": 5 }]"#,
                                                   upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"] } }"#)))
        XCTAssertEqual(result.warnings.count, 1)
        XCTAssertTrue(result.warnings[0].contains(#"routes[0].mirror[0].upstream: "app" also serves this route's requests"#), result.warnings[0])
    }

    // MARK: Control

    func testControlMode() throws {
        let config = try XCTUnwrap(parse(Doc.make(extra: #""control": { "mode": "660" }"#))).config
        XCTAssertEqual(config.control?.mode, 0o660)
        assertError(Doc.make(extra: #""control": { "mode": "0999" }"#), #"control.mode: expected an octal string like "0600", got "0999""#)
        assertError(Doc.make(extra: #""control": { "mode": "rw" }"#), "control.mode: expected an octal string")
        assertError(Doc.make(extra: #""control": { "socket": "" }"#), "control.socket: must not be empty")
        assertError(Doc.make(extra: #""control": { "stateFile": 3 }"#), "control.stateFile: expected a string")
    }

    // MARK: Many errors

    func testEveryErrorIsReportedAtOnce() {
        let text = """
        {
          "workers": 999,
          "listeners": [ { "address": "nohost" } ],
          "limits": { "maxHeaders": 0, "bogus": 1 },
          "upstreams": { "app": { "endpoints": [] } },
          "routes": [
            { "name": "a", "upstream": "missing" },
            { "name": "a", "upstream": "app", "mirror": [ { "upstream": "app", "percent": 500 } ] },
          ],
        }
        """
        let messages = errors(text, file: "config/many.json")
        XCTAssertEqual(messages, [
            "config/many.json:2: workers: must be between 0 and 256, got 999",
            #"config/many.json:3: listeners[0].address: "nohost": missing port; expected "host:port", e.g. "127.0.0.1:8080" or "[::1]:8080""#,
            "config/many.json:4: limits.bogus: unknown key",
            "config/many.json:4: limits.maxHeaders: must be at least 1, got 0",
            "config/many.json:5: upstreams.app.endpoints: must list at least one endpoint",
            #"config/many.json:7: routes[0].upstream: unknown upstream "missing""#,
            #"config/many.json:8: routes[1].name: duplicate route name "a" (also routes[0])"#,
            "config/many.json:8: routes[1].mirror[0].percent: must be greater than 0 and at most 100, got 500",
        ])
    }
}
