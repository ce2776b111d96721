// The switchyard command line: `check` reports every config error with file and key path,
// `run` fails fast with one clear line, `--version` and `--help` answer on stdout.
import Foundation
import XCTest

final class CommandLineTests: EndToEndTestCase {
    private func nonEmptyLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    func testCheckReportsEveryErrorWithFileAndKeyPath() throws {
        let path = try writeFile("bad.json", """
            {
              "listeners": [ { "address": "127.0.0.1:99999" } ],
              "upstreams": { "app": { "endpoints": ["127.0.0.1:9001"] } },
              "routes": [ { "name": "default", "upstream": "missing" } ],
              "unexpected": true
            }
            """)
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        let lines = nonEmptyLines(result.stderr)
        XCTAssertEqual(lines.count, 3, result.stderr)
        for line in lines { XCTAssertTrue(line.hasPrefix(path + ":"), "each error names the file: \(line)") }
        XCTAssertTrue(result.stderr.contains("routes[0].upstream"), result.stderr)
        XCTAssertTrue(result.stderr.contains("missing"), result.stderr)
        XCTAssertTrue(result.stderr.contains("listeners[0].address"), result.stderr)
        XCTAssertTrue(result.stderr.contains("unexpected"), result.stderr)
        XCTAssertTrue(result.stderr.contains(":4:"), "the line of the bad route is given: \(result.stderr)")
    }

    func testCheckReportsSyntaxErrorPosition() throws {
        let path = try writeFile("syntax.json", "{\n  \"listeners\": [ { \"address\": \"127.0.0.1:0\" } ]\n  \"routes\": []\n}\n")
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        XCTAssertTrue(result.stderr.hasPrefix(path + ":3:"), result.stderr)
    }

    func testCheckAcceptsAValidFile() throws {
        let path = try writeFile("good.json", ProxyConfig(endpoints: ["127.0.0.1:9001"]).json)
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(result.termination, .exited(0), result.stderr)
        XCTAssertTrue(result.stdout.contains("ok"), result.stdout)
    }

    func testCheckOnAMissingFile() throws {
        let path = try temporaryDirectory() + "/absent.json"
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        XCTAssertTrue(result.stderr.contains(path), result.stderr)
    }

    func testRunWithABadConfigExitsWithOneLine() throws {
        var config = ProxyConfig(endpoints: ["127.0.0.1:9001"])
        config.routes = [#"{ "name": "default", "upstream": "nowhere" }"#]
        let path = try writeFile("bad-run.json", config.json)
        let result = try ChildProcess.run(switchyard: ["run", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        let lines = nonEmptyLines(result.stderr)
        XCTAssertEqual(lines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(path), result.stderr)
        XCTAssertTrue(result.stderr.contains("routes[0].upstream"), result.stderr)
    }

    func testRunOnAnAddressInUseExitsWithOneLine() throws {
        let port = try occupiedPort()
        let json = ProxyConfig(endpoints: ["127.0.0.1:9001"]).json
            .replacingOccurrences(of: "127.0.0.1:0", with: "127.0.0.1:\(port)")
        let path = try writeFile("in-use.json", json)
        let result = try ChildProcess.run(switchyard: ["run", "--config", path])
        XCTAssertEqual(result.termination, .exited(1))
        let lines = nonEmptyLines(result.stderr)
        XCTAssertEqual(lines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("127.0.0.1:\(port)"), result.stderr)
        XCTAssertTrue(result.stderr.lowercased().contains("in use"), result.stderr)
    }

    func testVersion() throws {
        let result = try ChildProcess.run(switchyard: ["--version"])
        XCTAssertEqual(result.termination, .exited(0))
        XCTAssertTrue(result.stdout.hasPrefix("switchyard "), result.stdout)
        XCTAssertNotNil(result.stdout.range(of: #"\d+\.\d+\.\d+"#, options: .regularExpression), result.stdout)
    }

    func testHelp() throws {
        let result = try ChildProcess.run(switchyard: ["--help"])
        XCTAssertEqual(result.termination, .exited(0))
        for command in ["run", "check", "echo"] {
            XCTAssertTrue(result.stdout.contains(command), "--help mentions \(command): \(result.stdout)")
        }
        let run = try ChildProcess.run(switchyard: ["run", "--help"])
        XCTAssertEqual(run.termination, .exited(0))
        XCTAssertTrue(run.stdout.contains("--config"), run.stdout)
    }

    func testUnknownCommandFails() throws {
        let result = try ChildProcess.run(switchyard: ["frobnicate"])
        XCTAssertEqual(result.termination, .exited(1))
        XCTAssertTrue(result.stderr.contains("frobnicate"), result.stderr)
    }
}
