// `setHeaders` in the config: values read from a file (trailing newline dropped) or a variable,
// refused with file, key path and reason when they cannot be read, cannot be trusted or cannot
// be a header value, and never printed; a color's own list wins over the upstream's.
@testable import Config
import Foundation
import Glibc
import Routing
@testable import Runtime
import XCTest

final class SetHeadersConfigTests: XCTestCase {
    private var files: [TemporaryFile] = []

    override func tearDown() {
        for f in files { f.remove() }
        files.removeAll()
    }

    private func secretFile(_ contents: String, mode: mode_t = 0o600) throws -> String {
        let f = try TemporaryFile(contents: contents, suffix: ".key")
        files.append(f)
        XCTAssertEqual(chmod(f.path, mode), 0)
        return f.path
    }

    /// The `app` upstream with `setHeaders` set to `members`.
    private func doc(_ members: String) -> String {
        Doc.make(upstreams: #"{ "app": { "endpoints": ["127.0.0.1:9001"], "setHeaders": { \#(members) } } }"#)
    }

    func testAFileValueLosesItsTrailingNewlineAndPrintsOnlyItsSource() throws {
        let path = try secretFile("fk-0123\n")
        let loaded = try XCTUnwrap(parse(doc(#""x-functions-key": { "file": "\#(path)" }"#)))
        let set = loaded.config.upstreams[0].setHeaders
        XCTAssertEqual(set.map(\.name), ["x-functions-key"])
        XCTAssertEqual(set.first?.value.bytes, Array("fk-0123".utf8))
        XCTAssertEqual(set.first?.description, "x-functions-key from file \(path)")
        XCTAssertFalse("\(set) \(loaded.config)".contains("fk-0123"), "printing the config never shows the value")
        XCTAssertEqual(loaded.warnings, [])
        XCTAssertTrue(loaded.files.contains { $0.path == path }, "named, so the service account is checked for it")
    }

    func testAnEnvironmentValueAndAnUnsetVariable() throws {
        try withEnvironment("env-key-1") { name in
            let loaded = try XCTUnwrap(parse(doc(#""X-Api-Key": { "env": "\#(name)" }"#)))
            XCTAssertEqual(loaded.config.upstreams[0].setHeaders.first?.value.bytes, Array("env-key-1".utf8))
            XCTAssertEqual(loaded.config.upstreams[0].setHeaders.first?.description, "X-Api-Key from env \(name)")
        }
        withEnvironment(nil) { name in
            assertError(doc(#""X-Api-Key": { "env": "\#(name)" }"#),
                        "test.json:3: upstreams.app.setHeaders.X-Api-Key.env: environment variable \(name) is not set")
        }
    }

    func testAFileThatCannotBeReadOrTrustedIsRefused() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-no-such-\(UUID().uuidString)").path
        assertError(doc(#""x-functions-key": { "file": "\#(missing)" }"#),
                    "upstreams.app.setHeaders.x-functions-key.file: cannot read \"\(missing)\": No such file or directory")

        let groupWritable = try secretFile("fk-0123\n", mode: 0o660)
        assertError(doc(#""x-functions-key": { "file": "\#(groupWritable)" }"#),
                    "upstreams.app.setHeaders.x-functions-key.file: secret file \"\(groupWritable)\" is writable by its group (mode 0660); "
                        + "whoever can write it chooses the credential the proxy sends")

        let foreign = try secretFile("fk-0123\n")
        XCTAssertEqual(chown(foreign, 65_534, 65_534), 0)
        assertError(doc(#""x-functions-key": { "file": "\#(foreign)" }"#),
                    "secret file \"\(foreign)\" belongs to uid 65534, not to this process")

        let empty = try secretFile("\n")
        assertError(doc(#""x-functions-key": { "file": "\#(empty)" }"#), "\"\(empty)\" is empty")
    }

    func testAFileOthersCanReadIsWarnedAboutAndStillUsed() throws {
        let path = try secretFile("fk-0123\n", mode: 0o644)
        let loaded = try XCTUnwrap(parse(doc(#""x-functions-key": { "file": "\#(path)" }"#)))
        XCTAssertEqual(loaded.config.upstreams[0].setHeaders.count, 1)
        XCTAssertEqual(loaded.warnings, ["test.json:3: upstreams.app.setHeaders.x-functions-key.file: secret file \"\(path)\" has mode 0644: "
            + "every local user can read it and call the upstream as the proxy; chmod 600 it"])
    }

    func testAValueThatCannotBeAHeaderValueIsRefusedWithoutBeingPrinted() throws {
        let cases: [(String, String)] = [
            ("fk-a\r\nX-Injected: 1\n", "the file holds a line break (byte 5 of 19)"),
            ("fk-a\nX-Injected: 1", "the file holds a line break (byte 5 of 18)"),
            ("fk-a\u{1}b", "the file holds control byte 0x01 (byte 5 of 6)"),
            ("fk-a\u{7F}", "the file holds control byte 0x7F (byte 5 of 5)"),
            (" fk-a", "the file holds a space or tab at its start or end"),
            ("fk-a\t\n", "the file holds a space or tab at its start or end"),
        ]
        for (contents, reason) in cases {
            let path = try secretFile(contents)
            let messages = errors(doc(#""x-functions-key": { "file": "\#(path)" }"#))
            XCTAssertEqual(messages.count, 1, "\(messages)")
            XCTAssertTrue(messages.first?.contains("upstreams.app.setHeaders.x-functions-key.file: \(reason); a header value cannot") == true,
                          "\(contents.debugDescription): \(messages)")
            XCTAssertFalse(messages.joined().contains("fk-a"), "the value is never in the message: \(messages)")
        }
        try withEnvironment("fk-a\rb") { name in
            assertError(doc(#""x-functions-key": { "env": "\#(name)" }"#),
                        "upstreams.app.setHeaders.x-functions-key.env: the variable holds a line break (byte 5 of 6)")
        }
    }

    func testNamesTheProxyWritesOrThatRepeatAreRefused() throws {
        let path = try secretFile("fk-0123\n")
        for name in ["Host", "content-length", "X-Forwarded-For", "connection", "traceparent", "X-Switchyard-Shadow"] {
            assertError(doc(#""\#(name)": { "file": "\#(path)" }"#),
                        "upstreams.app.setHeaders.\(name): \(name) is written by the proxy itself or is hop-by-hop")
        }
        assertError(doc(#""x key": { "file": "\#(path)" }"#), #"setHeaders["x key"]: "x key" is not a valid header name"#)
        assertError(doc(#""X-Key": { "file": "\#(path)" }, "x-key": { "file": "\#(path)" }"#),
                    #"upstreams.app.setHeaders.x-key: the same header as "X-Key""#)
        assertError(doc(#""x-key": {}"#), #"upstreams.app.setHeaders.x-key: needs "file" or "env""#)
        assertError(doc(#""x-key": { "file": "\#(path)", "env": "X" }"#), #"upstreams.app.setHeaders.x-key: has both "file" and "env""#)
        assertError(doc(#""x-key": "\#(path)""#), "upstreams.app.setHeaders.x-key: expected an object")
    }

    func testAColorsOwnListWinsOverTheUpstreamsInTheSnapshot() throws {
        let upstreamKey = try secretFile("upstream-key\n"), greenKey = try secretFile("green-key\n")
        let text = Doc.make(upstreams: """
            { "fn": { "live": "blue", "setHeaders": { "x-functions-key": { "file": "\(upstreamKey)" } },
                      "blue": { "endpoints": ["127.0.0.1:9001"] },
                      "green": { "endpoints": ["127.0.0.1:9002"], "setHeaders": { "X-Green-Key": { "file": "\(greenKey)" } } } },
              "app": { "endpoints": ["127.0.0.1:9003"] } }
            """)
        let config = try XCTUnwrap(parse(text)).config
        let snapshot = try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())
        func lines(_ upstream: String, _ color: Color?) -> [String] {
            var out: [String] = []
            snapshot.setHeaders(upstream: snapshot.upstreamIndex(named: upstream)!, color: color).forEachLine {
                out.append(String(decoding: $0, as: UTF8.self))
            }
            return out
        }
        XCTAssertEqual(lines("fn", .blue), ["x-functions-key: upstream-key\r\n"])
        XCTAssertEqual(lines("fn", nil), ["x-functions-key: upstream-key\r\n"], "the live color's")
        XCTAssertEqual(lines("fn", .green), ["X-Green-Key: green-key\r\n"], "the color's own list replaces the upstream's")
        XCTAssertEqual(lines("app", nil), [])
        let green = snapshot.setHeaders(upstream: snapshot.upstreamIndex(named: "fn")!, color: .green)
        XCTAssertTrue(Array("x-green-KEY".utf8).withUnsafeBytes { green.replaces($0) }, "client fields match in any case")
        XCTAssertFalse(Array("x-functions-key".utf8).withUnsafeBytes { green.replaces($0) })
    }
}
