// Subcommand dispatch, usage texts and the small argument parser they share.
import Foundation
import Glibc

let switchyardVersion = "0.1.0"

enum CLI {
    static let usage = """
    switchyard \(switchyardVersion): an HTTP/1.1 reverse proxy and traffic router

    usage: switchyard COMMAND [options]

    commands:
      demo   [--port N] [--workers N] [--admin-port N]
                                    run the built-in demo (canary, A/B, blue/green, shadow,
                                    a rollout) on 127.0.0.1:N (8080), admin listener on
                                    --admin-port (a free port, printed)
      run    --config FILE          run the proxy
      check  --config FILE          validate a config file (exit 0 valid, 1 invalid)
      ctl    [--socket PATH | --config FILE] [--json] [--wait[=SECONDS]] COMMAND...
      ctl    --etcd URL[,URL...] --prefix PREFIX --config FILE COMMAND...
                                    talk to a running proxy's control socket (flip, set
                                    weights, show ...; `switchyard ctl help` lists them;
                                    several --socket: one change on every instance, all or
                                    nothing; --etcd: a fleet's shared state directly)
      echo   --listen ADDR [--name NAME] [--delay-ms N]
                                    a small test upstream that answers with what it received
      help, --help                  this text; `switchyard COMMAND --help` for one command
      --version                     print the version

    """

    static func main(_ args: [String]) -> Int32 {
        guard let command = args.first else {
            FileHandle.standardError.write(Data(usage.utf8))
            return 1
        }
        let rest = Array(args.dropFirst())
        switch command {
        case "run": return RunCommand.main(rest)
        case "demo": return DemoCommand.main(rest)
        case "check": return CheckCommand.main(rest)
        case "echo": return EchoCommand.main(rest)
        case "ctl": return CtlCommand.main(rest)
        case "help", "--help", "-h":
            print(usage, terminator: "")
            return 0
        case "--version", "version":
            print("switchyard \(switchyardVersion)")
            return 0
        default:
            fail("unknown command '\(command)' (try 'switchyard --help')")
            return 1
        }
    }

    static func fail(_ message: String) {
        FileHandle.standardError.write(Data("switchyard: \(message)\n".utf8))
    }
}

/// `--name value` options; every option takes a value except those listed as flags.
struct Options {
    var values: [String: String] = [:]
    var flags: Set<String> = []
    var positional: [String] = []
    var wantsHelp = false

    /// Returns nil (after printing why) on an unknown option or a missing value.
    init?(_ args: [String], valued: Set<String>, flags knownFlags: Set<String> = [], command: String) {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--help" || a == "-h" {
                wantsHelp = true
            } else if knownFlags.contains(a) {
                flags.insert(a)
            } else if valued.contains(a) {
                guard i + 1 < args.count else {
                    CLI.fail("\(command): \(a) needs a value")
                    return nil
                }
                values[a] = args[i + 1]
                i += 1
            } else if a.hasPrefix("--"), let eq = a.firstIndex(of: "="), valued.contains(String(a[..<eq])) {
                values[String(a[..<eq])] = String(a[a.index(after: eq)...])
            } else if a.hasPrefix("-") {
                CLI.fail("\(command): unknown option '\(a)'")
                return nil
            } else {
                positional.append(a)
            }
            i += 1
        }
    }
}
