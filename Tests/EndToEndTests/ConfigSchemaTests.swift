// config/switchyard.schema.json, the JSON Schema editors complete and check configs with, says
// what the loader accepts: every shipped config is valid against it, and its objects have
// exactly the keys the parser reads (Support/config_schema.py; python3 with jsonschema, which
// CI installs: without it this test fails rather than skips).
import Foundation
import XCTest

final class ConfigSchemaTests: EndToEndTestCase {
    func testTheSchemaAcceptsEveryShippedConfigAndMatchesTheParser() throws {
        let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Support/config_schema.py").path
        let result = try ChildProcess.run(executable: "/usr/bin/env", arguments: ["python3", script, RepoPaths.root.path], timeout: 60)
        XCTAssertEqual(result.termination, .exited(0), "python3 and jsonschema are required (pip install jsonschema):\n"
            + result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("key lists"), result.stdout)
    }
}
