// Helpers for config tests: documents built from sections, parsing that expects success or a
// given error, and temporary files that clean themselves up.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
@testable import Rollouts
@testable import Runtime
import XCTest

enum Doc {
    static let listeners = #"[{ "address": "127.0.0.1:8080" }]"#
    static let upstreams = #"{ "app": { "endpoints": ["127.0.0.1:9001"] } }"#
    static let routes = #"[{ "name": "default", "upstream": "app" }]"#

    /// A valid document unless a section is replaced; `extra` is more top-level members.
    static func make(listeners: String = listeners, upstreams: String = upstreams, routes: String = routes,
                     extra: String = "") -> String {
        """
        {
          "listeners": \(listeners),
          "upstreams": \(upstreams),
          "routes": \(routes),
          \(extra)
        }
        """
    }

    /// A document with one route, given as the members inside the route object.
    static func route(_ members: String, upstreams: String = #"""
        { "app": { "endpoints": ["127.0.0.1:9001"] }, "api-v2": { "endpoints": ["127.0.0.1:9002"] },
          "shadow": { "endpoints": ["127.0.0.1:9100"] } }
        """#) -> String {
        make(upstreams: upstreams, routes: "[{ \"name\": \"r\", \(members) }]")
    }
}

func parse(_ text: String, file: String = "test.json", line: UInt = #line) -> ConfigLoadResult? {
    do {
        return try ConfigLoader.parse(data: Data(text.utf8), file: file)
    } catch {
        XCTFail("expected a valid config, got:\n\(error)", line: line)
        return nil
    }
}

func errors(_ text: String, file: String = "test.json", line: UInt = #line) -> [String] {
    do {
        let result = try ConfigLoader.parse(data: Data(text.utf8), file: file)
        XCTFail("expected errors, the config was accepted: \(result.config)", line: line)
        return []
    } catch {
        return error.messages
    }
}

/// Asserts that parsing fails with an error whose message contains `fragment` (usually
/// `path: reason`).
func assertError(_ text: String, _ fragment: String, line: UInt = #line) {
    let messages = errors(text, line: line)
    XCTAssertTrue(messages.contains { $0.contains(fragment) },
                  "no error contains \(fragment.debugDescription); got:\n\(messages.joined(separator: "\n"))", line: line)
}

/// A file under the temporary directory with a unique name, removed by `remove()`.
struct TemporaryFile {
    let path: String

    init(contents: String, suffix: String = ".json") throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-test-\(UUID().uuidString)\(suffix)").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Sets an environment variable with a unique name for the duration of `body`.
func withEnvironment<T>(_ value: String?, _ body: (String) throws -> T) rethrows -> T {
    let name = "SWITCHYARD_TEST_\(UUID().uuidString.replacingOccurrences(of: "-", with: "_"))"
    if let value { setenv(name, value, 1) }
    defer { unsetenv(name) }
    return try body(name)
}

extension ControlEngine {
    /// An engine over `state` with its own rollout runner and guard board, wired as the
    /// executable wires them.
    convenience init(_ state: RuntimeState) {
        self.init(state: state, automation: ReleaseAutomation(state: state))
    }
}
