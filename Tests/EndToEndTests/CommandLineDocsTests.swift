// What a user reads about the command line matches what it accepts: every option in a
// subcommand's own usage lines is in `switchyard --help`, the bash completion and the man page,
// and the man page renders without a warning.
import Foundation
import TestSupport
import XCTest

final class CommandLineDocsTests: EndToEndTestCase {
    private static let commands = ["demo", "run", "check", "ctl", "echo"]

    /// The options on a subcommand's usage lines (its `--help` up to the first blank line).
    private func options(of command: String) throws -> Set<String> {
        let help = try ChildProcess.run(switchyard: [command, "--help"])
        XCTAssertEqual(help.termination, .exited(0), help.stderr)
        let synopsis = help.stdout.components(separatedBy: "\n\n").first ?? ""
        let found = synopsis.matches(of: /--[a-z][a-z-]*/).map { String($0.output) }
        XCTAssertFalse(found.isEmpty, "\(command) --help names no option: \(help.stdout)")
        return Set(found).subtracting(["--help"])
    }

    private func text(_ path: String) throws -> String {
        try String(contentsOf: RepoPaths.root.appendingPathComponent(path), encoding: .utf8)
    }

    func testEveryOptionIsInHelpCompletionAndManPage() throws {
        let help = try ChildProcess.run(switchyard: ["--help"]).stdout
        let completion = try text("deploy/completion/switchyard.bash")
        let man = try text("deploy/man/switchyard.1").replacingOccurrences(of: "\\-", with: "-")
        for command in Self.commands {
            XCTAssertTrue(completion.contains(command) && man.contains(command), command)
            for option in try options(of: command) {
                XCTAssertNotNil(help.range(of: option + #"\b"#, options: .regularExpression), "--help omits \(command) \(option)")
                XCTAssertTrue(completion.contains(option), "the completion omits \(command) \(option)")
                XCTAssertTrue(man.contains(option), "the man page omits \(command) \(option)")
            }
        }
    }

    func testTheCompletionLoadsInBash() throws {
        let path = RepoPaths.root.appendingPathComponent("deploy/completion/switchyard.bash").path
        let script = "source '\(path)' && COMP_WORDS=(switchyard demo --a) && COMP_CWORD=2 && _switchyard && echo \"${COMPREPLY[@]}\""
        let result = try ChildProcess.run(executable: "/bin/bash", arguments: ["-c", script])
        XCTAssertEqual(result.termination, .exited(0), result.stderr)
        XCTAssertEqual(result.stdout, "--admin-port\n")
    }

    func testTheManPageRendersWithoutWarnings() throws {
        // CI installs groff-base; without it this fails rather than skips.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: "/usr/bin/groff"), "groff is required (apt-get install groff-base)")
        let path = RepoPaths.root.appendingPathComponent("deploy/man/switchyard.1").path
        let result = try ChildProcess.run(executable: "/usr/bin/groff", arguments: ["-man", "-Tutf8", "-ww", "-P-cbou", path])
        XCTAssertEqual(result.termination, .exited(0), result.stderr)
        XCTAssertEqual(result.stderr, "", "groff warns")
        XCTAssertTrue(result.stdout.contains("SYNOPSIS"), result.stdout)
    }
}
