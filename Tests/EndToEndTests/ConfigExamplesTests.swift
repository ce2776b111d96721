// The examples in config/ check in an empty environment: CI sets no secrets, so an example
// whose sticky secret comes from a variable (secretEnv) must leave it commented out.
import Foundation
import XCTest

final class ConfigExamplesTests: EndToEndTestCase {
    func testEveryExampleChecksWithoutAnyEnvironment() throws {
        let binary = try SwitchyardBinary.require()
        let (paths, directory) = try shippedConfigs()
        let names = paths.map { URL(fileURLWithPath: $0).lastPathComponent }
        for expected in ["ab-test.json", "blue-green.json", "canary.json", "fleet.json", "functions-local.json", "health.json",
                         "quickstart.json", "rollout.json", "shadow.json", "tls.json"] {
            XCTAssertTrue(names.contains(expected), "config/\(expected) is missing")
        }
        for path in paths {
            let child = adopt(try ChildProcess(executable: "/usr/bin/env", arguments: ["-i", "-C", directory, binary, "check", "--config", path]))
            XCTAssertEqual(child.waitForExit(timeout: 20), .exited(0), "\(path):\n\(child.stderr)")
            XCTAssertEqual(child.stdout, "\(path): ok\n")
        }
    }
}
