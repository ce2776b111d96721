// The example configs in config/ as the tests check them: every *.json but the JSON Schema, in
// a working directory that holds the certificate pair config/tls.json names, made with the
// openssl command its comments give a user.
import Foundation
import XCTest

extension EndToEndTestCase {
    func shippedConfigs(file: StaticString = #filePath, line: UInt = #line) throws -> (paths: [String], directory: String) {
        let dir = RepoPaths.root.appendingPathComponent("config")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }
            .sorted()
        let tls = try String(contentsOf: dir.appendingPathComponent("tls.json"), encoding: .utf8)
        let command = tls.split(separator: "\n").first { $0.hasPrefix("//   mkdir -p tls && openssl ") }
        let work = try temporaryDirectory() + "/shipped"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        guard let command else {
            XCTFail("config/tls.json gives no openssl command for its certificate pair", file: file, line: line)
            return (names.map { dir.appendingPathComponent($0).path }, work)
        }
        let made = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "cd \"$0\" && " + command.dropFirst(5), work])
        XCTAssertEqual(made.termination, .exited(0), "config/tls.json's openssl command: \(made.stderr)", file: file, line: line)
        return (names.map { dir.appendingPathComponent($0).path }, work)
    }
}
