// What an operator types does what it says: a lone `ctl begin` is refused with the reason, a
// reload that a runtime override masks names the key in its reply and in the log, and `check`
// lists errors top to bottom.
import Foundation
import Glibc
import XCTest

final class OperatorSurpriseTests: EndToEndTestCase {
    func testALoneBeginIsRefusedAndHelpSaysWhy() throws {
        let (blue, green, canary) = (try startEcho(name: "blue"), try startEcho(name: "green"), try startEcho(name: "canary"))
        _ = try startProxy(json: try controlConfig(blue: blue, green: green, canary: canary))
        let lone = try ctl(["begin"])
        XCTAssertEqual(lone.termination, .exited(1))
        XCTAssertTrue(lone.stderr.contains("a transaction lives as long as its connection"), lone.stderr)
        let unfinished = try ctl(["begin", ";", "flip", "checkout"])
        XCTAssertEqual(unfinished.termination, .exited(1), "staged changes that would be dropped")
        XCTAssertEqual(try ctl(["show", "state"]).stdout.contains("live"), false, "nothing was sent")
        let whole = try ctl(["begin", ";", "flip", "checkout", ";", "commit"])
        XCTAssertEqual(whole.termination, .exited(0), whole.stdout + whole.stderr)

        let help = try ChildProcess.run(switchyard: ["ctl", "--help"])
        XCTAssertTrue(help.stdout.contains("a lone\n") || help.stdout.contains("lone `switchyard ctl begin` is refused"), help.stdout)
        XCTAssertTrue(help.stdout.contains("--socket PATH --socket PATH"), help.stdout)
    }

    func testAReloadMaskedByARuntimeWeightSaysSoInTheReplyAndTheLog() throws {
        let (blue, green, canary) = (try startEcho(name: "blue"), try startEcho(name: "green"), try startEcho(name: "canary"))
        let text = try controlConfig(blue: blue, green: green, canary: canary, stable: 100, canaryWeight: 0)
        let proxy = try startProxy(json: text)
        XCTAssertEqual(try ctl(["set", "weights", "shop", "stable=50", "canary=50"]).termination, .exited(0))
        let edited = try controlConfig(blue: blue, green: green, canary: canary, stable: 70, canaryWeight: 30)
        try Data(edited.utf8).write(to: URL(fileURLWithPath: proxy.configPath))
        let reload = try ctl(["reload"])
        XCTAssertEqual(reload.termination, .exited(0), reload.stderr)
        let line = "routes.shop.split weights: file 70/30, runtime 50/50 kept; reset shop to take the file's"
        XCTAssertTrue(reload.stdout.contains(line), reload.stdout)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: line), "logged too")
        // Following the advice works as printed.
        XCTAssertEqual(try ctl(["reset", "shop"]).termination, .exited(0))
        let routes = try ctl(["--json", "show", "routes"]).stdout
        XCTAssertTrue(routes.contains("\"weight\":70") && routes.contains("\"weight\":30"), routes)
    }

    func testCheckListsErrorsInFileOrder() throws {
        let path = try writeFile("order.json", """
            {
              "routes": [ { "name": "default", "upstream": "missing" } ],
              "upstreams": { "app": { "endpoints": ["127.0.0.1:1"] } },
              "control": { "mode": "0666" },
              "listeners": [ { "address": "127.0.0.1:99999" } ],
              "workers": -1
            }
            """)
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        let numbers = result.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard line.hasPrefix(path + ":") else { return nil }
            return Int(line.dropFirst(path.count + 1).prefix { $0.isNumber })
        }
        XCTAssertEqual(numbers, [2, 4, 5, 6], result.stderr)
    }
}
