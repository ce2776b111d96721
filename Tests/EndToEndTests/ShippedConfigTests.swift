// Every config file shipped in config/ passes `switchyard check`.
import Foundation
import XCTest

final class ShippedConfigTests: EndToEndTestCase {
    func testEveryShippedConfigChecks() throws {
        let (paths, directory) = try shippedConfigs()
        XCTAssertFalse(paths.isEmpty, "no config files in config/")
        for path in paths {
            let result = try ChildProcess.run(executable: "/usr/bin/env", arguments: ["-C", directory, try SwitchyardBinary.require(),
                                                                                     "check", "--config", path])
            XCTAssertEqual(result.termination, .exited(0), "\(path):\n\(result.stderr)")
        }
    }
}
