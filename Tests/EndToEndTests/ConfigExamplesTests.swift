// The examples in config/ check in an empty environment: CI sets no secrets, so an example
// whose sticky secret comes from a variable (secretEnv) must leave it commented out.
import Foundation
import XCTest

final class ConfigExamplesTests: EndToEndTestCase {
    func testEveryExampleChecksWithoutAnyEnvironment() throws {
        let binary = try SwitchyardBinary.require()
        let dir = RepoPaths.root.appendingPathComponent("config")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }.sorted()
        for expected in ["ab-test.json", "blue-green.json", "canary.json", "fleet.json", "shadow.json"] {
            XCTAssertTrue(names.contains(expected), "config/\(expected) is missing")
        }
        for name in names {
            let path = dir.appendingPathComponent(name).path
            let child = adopt(try ChildProcess(executable: "/usr/bin/env", arguments: ["-i", binary, "check", "--config", path]))
            XCTAssertEqual(child.waitForExit(timeout: 20), .exited(0), "\(name):\n\(child.stderr)")
            XCTAssertEqual(child.stdout, "\(path): ok\n")
        }
    }
}
