// `switchyard check --config FILE`: validate without starting anything.
import Admin
import CommandSocket
import Config
import Foundation
import Rollouts
import Runtime

enum CheckCommand {
    static let usage = """
    usage: switchyard check --config FILE

    Validates FILE: every error is printed with its file, key path and reason. Exit 0 when the
    file is valid (warnings are printed but do not fail), 1 otherwise.

    """

    static func main(_ args: [String]) -> Int32 {
        guard let opts = Options(args, valued: ["--config"], command: "check") else { return 1 }
        if opts.wantsHelp { print(usage, terminator: ""); return 0 }
        guard let path = opts.values["--config"] ?? opts.positional.first else {
            CLI.fail("check: --config FILE is required")
            return 1
        }
        do {
            // Endpoint host names are tried, but one that does not resolve (no DNS here) is a
            // warning: `run` is where a name must have an address.
            let result = try ConfigLoader.load(path: path, resolvingNames: SystemResolver.resolve)
            for w in result.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            _ = try SnapshotBuilder.build(result.config, version: 1, registry: EndpointRegistry())
            print("\(path): ok")
            return 0
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 1
        }
    }
}
