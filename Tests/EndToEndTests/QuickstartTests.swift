// The README's "Your first config" steps, followed as written: every upstream they start, the
// proxy on config/quickstart.json as shipped, and the curl at the end answered 200. Only the
// ports move (tests never take fixed ports): each address in the steps and the file is mapped to
// the one its process actually got.
import Foundation
import TestSupport
import XCTest

final class QuickstartTests: EndToEndTestCase {
    func testTheReadmeStepsGetAnAnswerFromTheShippedQuickstart() throws {
        let steps = try Self.readmeSteps()
        // Its comment lines left out: they quote addresses too.
        var config = try String(contentsOf: RepoPaths.root.appendingPathComponent("config/quickstart.json"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
        var curls: [String] = []
        var started: Set<String> = []
        var ran = false
        for step in steps {
            let words = step.split(separator: " ").map(String.init).filter { $0 != "&" }
            if let i = words.firstIndex(of: "echo"), words.first?.hasSuffix("switchyard") == true,
               let listen = words.firstIndex(of: "--listen").map({ words[$0 + 1] }) {
                let name = words.firstIndex(of: "--name").map { words[$0 + 1] } ?? "echo"
                XCTAssertEqual(i, 1, step)
                let echo = try startEcho(name: name)
                config = config.replacingOccurrences(of: "\"\(listen)\"", with: "\"\(echo.endpoint)\"")
                started.insert(echo.endpoint)
            } else if words.first?.hasSuffix("switchyard") == true, words.dropFirst().first == "run" {
                XCTAssertEqual(Array(words.dropFirst(2)), ["--config", "config/quickstart.json"], step)
                ran = true
            } else if words.first == "curl" {
                curls.append(try XCTUnwrap(words.last))
            }
        }
        XCTAssertTrue(ran, "the steps never run the quickstart config: \(steps)")
        XCTAssertFalse(curls.isEmpty, "the steps never ask the proxy: \(steps)")
        let listener = try XCTUnwrap(config.range(of: #""127\.0\.0\.1:[0-9]+""#, options: .regularExpression))
        let shippedAddress = String(config[listener].dropFirst().dropLast())
        config.replaceSubrange(listener, with: "\"127.0.0.1:0\"")
        let unstarted = config.split(separator: "\"").map(String.init)
            .filter { $0.hasPrefix("127.0.0.1:") && $0 != "127.0.0.1:0" && !started.contains($0) }
        XCTAssertEqual(unstarted, [], "endpoints of config/quickstart.json the README's steps start nothing on")
        let proxy = try startProxy(json: config)
        for url in curls {
            XCTAssertTrue(url.hasPrefix("http://\(shippedAddress)/"), "\(url) is not the quickstart's listener \(shippedAddress)")
            let path = "/" + url.dropFirst("http://\(shippedAddress)/".count)
            let client = try connect(proxy)
            let answer = try client.exchange(get(path))
            XCTAssertEqual(answer.status, 200, "\(url): \(answer.status) \(answer.body)")
            XCTAssertTrue(["app-1", "app-2"].contains(answer.header("X-Echo-Name") ?? ""), "\(answer.header("X-Echo-Name") ?? "-")")
        }
    }

    /// The commands of the first ```sh block after the "## Your first config" heading.
    static func readmeSteps() throws -> [String] {
        let readme = try String(contentsOf: RepoPaths.root.appendingPathComponent("README.md"), encoding: .utf8)
        guard let heading = readme.range(of: "\n## Your first config\n"),
              let open = readme.range(of: "```sh\n", range: heading.upperBound..<readme.endIndex),
              let close = readme.range(of: "```", range: open.upperBound..<readme.endIndex) else {
            throw TestError("README.md has no \"Your first config\" section with a sh block")
        }
        return readme[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
    }
}
