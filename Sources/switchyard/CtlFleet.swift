// `switchyard ctl --socket A --socket B ... CHANGES`: one change applied to several instances,
// all or nothing. Every instance is reached first; then a transaction is opened on each and
// every change staged on each (a staged change has been validated against that instance's own
// config and pools); only when all staged everything is each committed, otherwise each is
// aborted. A commit can still be refused where another change landed since staging (it
// rebases); that is reported per instance, with the instances that did commit.
import Admin
import CommandSocket
import Config
import Foundation
import Rollouts
import Runtime

struct CtlFleet {
    let sockets: [String]
    let json: Bool

    enum Outcome {
        case committed(version: String)
        case refused(String)
        case aborted(String)
        case unreachable(String)

        var word: String {
            switch self {
            case .committed: return "committed"
            case .refused: return "refused"
            case .aborted: return "aborted"
            case .unreachable: return "unreachable"
            }
        }
    }

    /// The commands without their guard options, and those options (from the first command
    /// that has them).
    static func guardOptions(_ commands: [String]) -> (commands: [String], options: [String]) {
        let names = ["--bake", "--revert-if-error-rate", "--revert-if-p99-ms", "--revert-if-p99-ratio", "--min-requests"]
        var options: [String] = []
        let stripped = commands.map { command -> String in
            var words: [String] = []
            var found: [String] = []
            var parts = command.split(separator: " ").map(String.init)[...]
            while let w = parts.popFirst() {
                let name = String(w.split(separator: "=", maxSplits: 1).first ?? "")
                guard names.contains(name) else { words.append(w); continue }
                found.append(w)
                if !w.contains("="), let value = parts.popFirst() { found.append(value) }
            }
            if options.isEmpty { options = found }
            return words.joined(separator: " ")
        }
        return (stripped, options)
    }

    /// Runs `commands` on every socket; exit 0 only when every instance committed.
    func run(_ commands: [String]) -> Int32 {
        let verbs = commands.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        if verbs.contains(where: { ["begin", "commit", "abort", "reload", "quit"].contains($0) }) {
            CLI.fail("ctl: with several --socket, ctl opens and commits the transaction on every instance itself; "
                + "give only the changes (flip, set, endpoint, reset), or `show`/`help` alone")
            return 1
        }
        var clients: [ControlClient] = []
        var outcomes: [Outcome] = []
        for path in sockets {
            do {
                clients.append(try ControlClient(path: path))
            } catch {
                outcomes = sockets.map { $0 == path ? .unreachable(error.description) : .aborted("not started: \(path) is unreachable") }
                return report(outcomes, summary: "nothing changed: \(path) is unreachable")
            }
        }
        if verbs.allSatisfy({ $0 == "show" || $0 == "help" }) {
            return readOnly(commands, clients)
        }

        // Guard options (`flip x --bake 60 --revert-if-error-rate 0.05`) go on each commit: every
        // instance bakes its own commit and reverts it alone on a breach of its own counters.
        let (staged, guardWords) = Self.guardOptions(commands)
        let commit = (["commit"] + guardWords).joined(separator: " ")
        let commands = staged

        // Phase one: open and stage everywhere; the first refusal stops it.
        var failure: (index: Int, message: String)?
        stage: for (index, client) in clients.enumerated() {
            for command in ["begin"] + commands {
                let reply: ControlValue
                do { reply = try client.command(command) } catch {
                    failure = (index, "\(command): \(error.description)")
                    break stage
                }
                if reply["ok"]?.bool != true {
                    failure = (index, "\(command): \(reply["error"]?.string ?? reply.json)")
                    break stage
                }
            }
        }
        if let failure {
            for (index, client) in clients.enumerated() {
                if index == failure.index {
                    outcomes.append(.refused(failure.message))
                    _ = try? client.command("abort")
                } else {
                    // A connection that ends aborts too; the explicit abort says so at once.
                    _ = try? client.command("abort")
                    outcomes.append(.aborted("\(sockets[failure.index]) refused"))
                }
            }
            return report(outcomes, summary: "nothing changed on any instance: \(sockets[failure.index]) refused: \(failure.message)")
        }

        // Phase two: every instance staged every change; commit each.
        for client in clients {
            do {
                let reply = try client.command(commit)
                if reply["ok"]?.bool == true {
                    outcomes.append(.committed(version: reply["version"]?.int.map(String.init) ?? "?"))
                } else {
                    outcomes.append(.refused("commit: \(reply["error"]?.string ?? reply.json)"))
                }
            } catch {
                outcomes.append(.refused("commit: \(error.description)"))
            }
        }
        let committed = outcomes.filter { if case .committed = $0 { return true } else { return false } }.count
        let summary = committed == sockets.count
            ? "committed on all \(sockets.count) instances"
            : "SPLIT: committed on \(committed) of \(sockets.count) instances; the others refused at commit (see above): "
                + "repeat the change on them, or undo it where it committed (reset NAME)"
        return report(outcomes, summary: summary)
    }

    private func readOnly(_ commands: [String], _ clients: [ControlClient]) -> Int32 {
        var failed = false
        for (path, client) in zip(sockets, clients) {
            if !json { print("== \(path)") }
            for command in commands {
                do {
                    let reply = try client.command(command)
                    if reply["ok"]?.bool != true { failed = true }
                    print(json ? reply.json : ControlFormat.render(reply))
                } catch {
                    failed = true
                    CLI.fail("ctl: \(path): \(error)")
                }
            }
        }
        return failed ? 1 : 0
    }

    private func report(_ outcomes: [Outcome], summary: String) -> Int32 {
        for (path, outcome) in zip(sockets, outcomes) {
            if json {
                var line: ControlValue = ["socket": .string(path), "result": .string(outcome.word)]
                switch outcome {
                case .committed(let version): line.set("version", .string(version))
                case .refused(let why), .aborted(let why), .unreachable(let why): line.set("reason", .string(why))
                }
                print(line.json)
            } else {
                switch outcome {
                case .committed(let version): print("\(path): committed, version \(version)")
                case .refused(let why): print("\(path): refused: \(why)")
                case .aborted(let why): print("\(path): aborted (\(why))")
                case .unreachable(let why): print("\(path): unreachable: \(why)")
                }
            }
        }
        let ok = outcomes.allSatisfy { if case .committed = $0 { return true } else { return false } }
        if json {
            print((["ok": .bool(ok), "summary": .string(summary)] as ControlValue).json)
        } else {
            print(summary)
        }
        return ok ? 0 : 1
    }
}
