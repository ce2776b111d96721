// A cookie-signing key and an override token never appear in `show`, /metrics or the log, and
// a key file others can read is reported by `check` and at start.
import Foundation
import Glibc
import XCTest

final class SecretsNotPrintedTests: EndToEndTestCase {
    func testSecretsStayOutOfShowMetricsAndLogs() throws {
        let echo = try startEcho(name: "app")
        let dir = try temporaryDirectory()
        let cookieKey = "cookie-key-7f3a9c2e"
        let token = "override-token-51b8d04f"
        let keyFile = try writeFile("cookie.key", cookieKey + "\n")
        chmod(keyFile, 0o644)
        setenv("SWITCHYARD_TEST_TOKEN", token, 1)
        defer { unsetenv("SWITCHYARD_TEST_TOKEN") }
        let route = """
            { "name": "shop", "split": [ { "variant": "a", "upstream": "app", "weight": 50 }, { "variant": "b", "upstream": "app", "weight": 50 } ],
              "sticky": { "cookie": "sy-shop", "secretFile": "\(keyFile)" },
              "override": { "secretEnv": "SWITCHYARD_TEST_TOKEN" } }
            """
        let text = routingConfig(upstreams: [("app", pool(echo.endpoint))], routes: [route], controlSocket: dir + "/control.sock", admin: true)
        let configPath = try writeFile("secret.json", text)

        let check = try ChildProcess.run(switchyard: ["check", "--config", configPath])
        XCTAssertEqual(check.termination, .exited(0), check.stderr)
        XCTAssertTrue(check.stderr.contains("has mode 0644: every local user can read it"), check.stderr)

        let proxy = try startProxy(json: text)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "has mode 0644"), "warned at start too")
        let admin = try adminPort(proxy)
        XCTAssertEqual(try connect(proxy).exchange(get("/", ["X-Switchyard-Token: \(token)", "X-Switchyard-Variant: b"])).status, 200)
        var printed = ""
        for command in [["show", "routes"], ["show", "state"], ["show", "stats"], ["show", "upstreams"], ["help"]] {
            for json in [false, true] {
                let r = try ChildProcess.run(switchyard: ["ctl", "--socket", dir + "/control.sock"] + (json ? ["--json"] : []) + command)
                XCTAssertEqual(r.termination, .exited(0), r.stderr)
                printed += r.stdout + r.stderr
            }
        }
        XCTAssertTrue(printed.contains("shop") && printed.contains("\"variant\":\"b\""), "the commands answered: \(printed)")
        printed += try metrics(adminPort: admin).text
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"))
        printed += proxy.process.stderr
        XCTAssertFalse(printed.contains(cookieKey), "the cookie key is never printed")
        XCTAssertFalse(printed.contains(token), "the override token is never printed")
    }
}
