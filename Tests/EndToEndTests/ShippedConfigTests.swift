// Every config file shipped in config/ passes `switchyard check`.
import Foundation
import XCTest

final class ShippedConfigTests: EndToEndTestCase {
    func testEveryShippedConfigChecks() throws {
        let dir = RepoPaths.root.appendingPathComponent("config")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { ($0.hasSuffix(".json") || $0.hasSuffix(".jsonc")) && !$0.hasSuffix(".schema.json") }
            .sorted()
        XCTAssertFalse(names.isEmpty, "no config files in \(dir.path)")
        for name in names {
            let path = dir.appendingPathComponent(name).path
            let result = try ChildProcess.run(switchyard: ["check", "--config", path])
            XCTAssertEqual(result.termination, .exited(0), "\(name):\n\(result.stderr)")
        }
    }
}
