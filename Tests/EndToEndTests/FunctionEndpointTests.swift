// Fronting endpoints reached by name (function URLs): `check` only warns about a name that does
// not resolve, `run` refuses it; a name is resolved by the system resolver and the upstream's
// hostHeader replaces the Host, the client's going to X-Forwarded-Host.
import Foundation
import XCTest

final class FunctionEndpointTests: EndToEndTestCase {
    /// One upstream whose endpoint is `endpoint`, with `members` added to it.
    private func config(endpoint: String, members: String = "") -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 1,
          "upstreams": { "fn": { "endpoints": ["\(endpoint)"]\(members) } },
          "routes": [ { "name": "default", "upstream": "fn" } ]
        }
        """
    }

    func testCheckWarnsAboutANameThatDoesNotResolveAndRunRefusesIt() throws {
        let path = try writeFile("unresolvable.json", config(endpoint: "no-such-function.invalid:443"))
        let check = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(check.termination, .exited(0), check.stderr)
        XCTAssertEqual(check.stdout, "\(path): ok\n")
        XCTAssertTrue(check.stderr.hasPrefix("warning: \(path):4: upstreams.fn.endpoints[0]: cannot resolve \"no-such-function.invalid\""),
                      check.stderr)

        let run = try ChildProcess.run(switchyard: ["run", "--config", path])
        XCTAssertEqual(run.termination, .exited(1), run.stderr)
        let lines = run.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("\(path): upstreams.fn.endpoints[0]: cannot resolve \"no-such-function.invalid\""), run.stderr)
        XCTAssertTrue(run.stderr.contains("no address was ever found"), run.stderr)
    }

    func testANamedEndpointGetsItsHostHeaderAndTheClientsHostIsForwarded() throws {
        let echo = try startEcho(name: "fn")
        let proxy = try startProxy(json: config(endpoint: "localhost:\(echo.port)",
                                                members: #", "hostHeader": "abc123.lambda-url.eu-west-1.on.aws", "resolveEveryMs": 200"#))
        let client = try connect(proxy)
        for _ in 0..<2 {
            let report = try client.exchange(get("/orders", host: "shop.example:8080")).echo()
            XCTAssertEqual(report.name, "fn")
            XCTAssertEqual(report.headers(named: "Host"), ["abc123.lambda-url.eu-west-1.on.aws"])
            XCTAssertEqual(report.headers(named: "X-Forwarded-Host"), ["shop.example:8080"])
        }
    }
}
