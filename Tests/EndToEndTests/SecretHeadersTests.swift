// `setHeaders`: a function key read from a file or variable reaches the upstream on every
// request (warm-ups and health checks too) in place of any field of that name the client sent; it never shows in the access
// log, `show`, /metrics, the log or a shadow copy (a mirror upstream sends only its own); a
// reload reads the file again, and one that cannot keeps the value being sent.
import Foundation
import Glibc
import TestSupport
import XCTest

final class SecretHeadersTests: EndToEndTestCase {
    private let primaryKey = "fk-primary-5d1e90c7"

    /// A 0600 file holding `value` and a newline, as `echo KEY > file` writes it.
    private func keyFile(_ name: String, _ value: String) throws -> String {
        let path = try writeFile(name, value + "\n")
        XCTAssertEqual(chmod(path, 0o600), 0)
        return path
    }

    /// `{ endpoints, setHeaders: { x-functions-key: SOURCE } }`; `source` is the JSON object.
    private func upstream(_ endpoint: String, key source: String? = nil) -> String {
        source.map { #"{ "endpoints": ["\#(endpoint)"], "setHeaders": { "x-functions-key": \#($0) } }"# } ?? pool(endpoint)
    }

    private func ctl(_ socket: String, _ command: [String], json: Bool = false) throws -> (ok: Bool, text: String) {
        let r = try ChildProcess.run(switchyard: ["ctl", "--socket", socket] + (json ? ["--json"] : []) + command)
        return (r.termination == .exited(0), r.stdout + r.stderr)
    }

    func testTheUpstreamGetsTheFilesValueAndAClientCannotSetIt() throws {
        let fn = try startEcho(name: "fn")
        let key = try keyFile("fn.key", primaryKey)
        let proxy = try startProxy(json: routingConfig(upstreams: [("fn", upstream(fn.endpoint, key: #"{ "file": "\#(key)" }"#))],
                                                       routes: [#"{ "name": "default", "upstream": "fn" }"#]))
        let client = try connect(proxy)
        for extra in [[], ["X-Functions-Key: client-chosen"], ["x-functions-key: one", "X-FUNCTIONS-KEY: two", "X-Other: kept"]] {
            let report = try client.exchange(get("/api/orders", extra)).echo()
            XCTAssertEqual(report.headers(named: "x-functions-key"), [primaryKey], "\(extra): only the proxy's value")
            if extra.contains("X-Other: kept") { XCTAssertEqual(report.header("X-Other"), "kept") }
        }
    }

    func testTheValueStaysOutOfTheAccessLogShowMetricsLogsAndShadowCopies() throws {
        let fn = try startEcho(name: "fn")
        let shadow = try startRecordingServer()
        let dir = try temporaryDirectory()
        let key = try keyFile("fn.key", primaryKey)
        let accessLog = dir + "/access.log"
        let socket = dir + "/control.sock"
        let proxy = try startProxy(json: """
            {
              "listeners": [ { "address": "127.0.0.1:0" } ],
              "workers": 1,
              "upstreams": {
                "fn": \(upstream(fn.endpoint, key: #"{ "file": "\#(key)" }"#)),
                "shadow": \(pool(shadow.endpoint))
              },
              "routes": [ { "name": "default", "upstream": "fn", "mirror": [ { "upstream": "shadow", "percent": 100 } ] } ],
              "control": { "socket": "\(socket)" },
              "admin": { "address": "127.0.0.1:0" },
              "accessLog": { "path": "\(accessLog)" }
            }
            """)
        let admin = try adminPort(proxy)
        let report = try connect(proxy).exchange(get("/api/orders?id=1", ["X-Trace: t-1"])).echo()
        XCTAssertEqual(report.headers(named: "x-functions-key"), [primaryKey])

        XCTAssertTrue(shadow.waitFor { $0.count == 1 }, "the copy arrived")
        let copy = try XCTUnwrap(shadow.requests.first)
        XCTAssertEqual(copy.header("X-Trace"), "t-1", "a copy of that request")
        XCTAssertEqual(copy.headers(named: "x-functions-key"), [], "the shadow's upstream sets none: the copy carries none")

        var printed = ""
        XCTAssertTrue(waitUntil(timeout: 10) {
            printed = String(decoding: FileManager.default.contents(atPath: accessLog) ?? Data(), as: UTF8.self)
            return printed.contains("/api/orders")
        }, "the exchange was logged")
        let show = try ctl(socket, ["show", "upstreams"], json: true)
        XCTAssertTrue(show.ok, show.text)
        XCTAssertTrue(show.text.contains("\"setHeaders\":[\"x-functions-key from file \(key)\"]"), show.text)
        for command in [["show", "upstreams"], ["show", "routes"], ["show", "state"], ["show", "stats"], ["show", "shadow"]] {
            for json in [false, true] {
                let r = try ctl(socket, command, json: json)
                XCTAssertTrue(r.ok, r.text)
                printed += r.text
            }
        }
        printed += try metrics(adminPort: admin).text
        let reload = try ctl(socket, ["reload"])
        XCTAssertTrue(reload.ok, reload.text)
        printed += reload.text
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"))
        printed += proxy.process.stderr
        XCTAssertTrue(printed.contains("x-functions-key from file"), "the commands answered")
        XCTAssertFalse(printed.contains(primaryKey), "the value is never printed")
    }

    func testAMirrorUpstreamWithItsOwnSetHeadersSendsItsOwnValueFromTheEnvironment() throws {
        let fn = try startEcho(name: "fn")
        let shadow = try startRecordingServer()
        let key = try keyFile("fn.key", primaryKey)
        let variable = "SWITCHYARD_TEST_SHADOW_KEY_\(getpid())"
        setenv(variable, "fk-shadow-33ab", 1)
        defer { unsetenv(variable) }
        let proxy = try startProxy(json: routingConfig(
            upstreams: [("fn", upstream(fn.endpoint, key: #"{ "file": "\#(key)" }"#)),
                        ("shadow", upstream(shadow.endpoint, key: #"{ "env": "\#(variable)" }"#))],
            routes: [#"{ "name": "default", "upstream": "fn", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }"#]))
        let report = try connect(proxy).exchange(get("/api", ["x-functions-key: client-chosen"])).echo()
        XCTAssertEqual(report.headers(named: "x-functions-key"), [primaryKey])
        XCTAssertTrue(shadow.waitFor { $0.count == 1 }, "the copy arrived")
        XCTAssertEqual(shadow.requests.first?.headers(named: "x-functions-key"), ["fk-shadow-33ab"],
                       "the shadow's own value, neither the primary's nor the client's")
    }

    func testAReloadReadsTheFileAgainAndOneThatCannotKeepsTheValueBeingSent() throws {
        let fn = try startEcho(name: "fn")
        let dir = try temporaryDirectory()
        let socket = dir + "/control.sock"
        let key = try keyFile("fn.key", "fk-before-reload")
        let proxy = try startProxy(json: routingConfig(upstreams: [("fn", upstream(fn.endpoint, key: #"{ "file": "\#(key)" }"#))],
                                                       routes: [#"{ "name": "default", "upstream": "fn" }"#], controlSocket: socket))
        func sent() throws -> [String] { try connect(proxy).exchange(get("/")).echo().headers(named: "x-functions-key") }
        XCTAssertEqual(try sent(), ["fk-before-reload"])

        _ = try keyFile("fn.key", "fk-after-reload")
        let reload = try ctl(socket, ["reload"])
        XCTAssertTrue(reload.ok, reload.text)
        XCTAssertEqual(try sent(), ["fk-after-reload"], "the rotated key is sent from the reload on")

        XCTAssertEqual(unlink(key), 0)
        let missing = try ctl(socket, ["reload"])
        XCTAssertFalse(missing.ok, missing.text)
        XCTAssertTrue(missing.text.contains("upstreams.fn.setHeaders.x-functions-key.file: cannot read \"\(key)\""), missing.text)
        XCTAssertEqual(try sent(), ["fk-after-reload"], "the refused reload kept the config, and the value, being served")

        _ = try keyFile("fn.key", "fk-bad\r\nX-Injected: 1")
        let injected = try ctl(socket, ["reload"])
        XCTAssertFalse(injected.ok, injected.text)
        XCTAssertTrue(injected.text.contains("the file holds a line break"), injected.text)
        XCTAssertFalse(injected.text.contains("fk-bad"), injected.text)
        XCTAssertEqual(try sent(), ["fk-after-reload"])
    }

    func testRunRefusesAKeyFileOthersCanWriteOrAValueWithALineBreak() throws {
        let fn = try startEcho(name: "fn")
        let writable = try keyFile("writable.key", primaryKey)
        XCTAssertEqual(chmod(writable, 0o666), 0)
        let broken = try keyFile("broken.key", "fk-a\nX-Injected: 1")
        for (file, reason) in [(writable, "secret file \"\(writable)\" is writable by every user (mode 0666)"),
                               (broken, "the file holds a line break (byte 5 of 18)")] {
            let path = try writeFile("refused.json", routingConfig(upstreams: [("fn", upstream(fn.endpoint, key: #"{ "file": "\#(file)" }"#))],
                                                                   routes: [#"{ "name": "default", "upstream": "fn" }"#]))
            let run = try ChildProcess.run(switchyard: ["run", "--config", path])
            XCTAssertEqual(run.termination, .exited(1), run.stderr)
            XCTAssertTrue(run.stderr.contains("\(path):6: upstreams.fn.setHeaders.x-functions-key.file: \(reason)"), run.stderr)
            XCTAssertFalse(run.stderr.contains(primaryKey) || run.stderr.contains("fk-a"), run.stderr)
        }
    }

    func testHealthChecksCarryTheKey() throws {
        let fn = try startRecordingServer()
        let key = try keyFile("fn.key", primaryKey)
        _ = try startProxy(json: routingConfig(
            upstreams: [("fn", """
                { "endpoints": ["\(fn.endpoint)"], "setHeaders": { "x-functions-key": { "file": "\(key)" } },
                  "healthCheck": { "path": "/health", "intervalMs": 50, "timeoutMs": 50 } }
                """)],
            routes: [#"{ "name": "default", "upstream": "fn" }"#]))
        XCTAssertTrue(fn.waitFor { !$0.isEmpty }, "a check arrived")
        let check = try XCTUnwrap(fn.requests.first)
        XCTAssertEqual(check.requestLine, "GET /health HTTP/1.1")
        XCTAssertEqual(check.headers(named: "x-functions-key"), [primaryKey], "a locked function answers a check without it 401")
    }

    func testAColorSendsItsOwnValueAndItsWarmupCarriesIt() throws {
        let blue = try startEcho(name: "blue")
        let green = try startRecordingServer()
        let dir = try temporaryDirectory()
        let socket = dir + "/control.sock"
        let key = try keyFile("fn.key", primaryKey)
        let greenKey = try keyFile("green.key", "fk-green-7aa0")
        let proxy = try startProxy(json: routingConfig(
            upstreams: [("fn", """
                { "live": "blue", "setHeaders": { "x-functions-key": { "file": "\(key)" } },
                  "warmup": { "path": "/warm", "requests": 1 },
                  "blue": { "endpoints": ["\(blue.endpoint)"] },
                  "green": { "endpoints": ["\(green.endpoint)"], "setHeaders": { "x-functions-key": { "file": "\(greenKey)" } } } }
                """)],
            routes: [#"{ "name": "default", "upstream": "fn" }"#], controlSocket: socket))
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/")).echo().headers(named: "x-functions-key"), [primaryKey], "blue takes the upstream's")

        let flip = try ctl(socket, ["flip", "fn"])
        XCTAssertTrue(flip.ok, flip.text)
        let warmed = try XCTUnwrap(green.requests.first, "the warm-up reached green before the flip answered")
        XCTAssertEqual(warmed.requestLine, "GET /warm HTTP/1.1")
        XCTAssertEqual(warmed.headers(named: "x-functions-key"), ["fk-green-7aa0"], "a function that needs its key warms up with it")

        XCTAssertEqual(try connect(proxy).exchange(get("/after-flip", ["X-Functions-Key: client-chosen"])).status, 200)
        XCTAssertTrue(green.waitFor { $0.contains { $0.requestLine.hasPrefix("GET /after-flip ") } })
        let served = try XCTUnwrap(green.requests.first { $0.requestLine.hasPrefix("GET /after-flip ") })
        XCTAssertEqual(served.headers(named: "x-functions-key"), ["fk-green-7aa0"], "green's own value, not the upstream's")
    }
}
