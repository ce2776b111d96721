// `switchyard ctl`: send commands to a running proxy's control socket and print the replies as
// tables (or raw JSON with --json); exit 1 when any reply is ok:false.
import Admin
import CommandSocket
import Config
import Foundation
import Glibc
import Rollouts
import Runtime

enum CtlCommand {
    static let defaultSocket = "/run/switchyard/control.sock"

    static let usage = """
    usage: switchyard ctl [--socket PATH | --config FILE] [--json] [--wait[=SECONDS]] COMMAND [ARGS...] [';' COMMAND ...]
           switchyard ctl --etcd URL[,URL...] --prefix PREFIX --config FILE [--json] [--wait[=SECONDS]] COMMAND [';' COMMAND ...]
           switchyard ctl [--socket PATH] [--json] < COMMANDS
           switchyard ctl --socket PATH --socket PATH ... [--json] COMMAND [';' COMMAND ...]

    Sends COMMAND to the control socket (--socket, else the config's control.socket with
    --config, else $SWITCHYARD_SOCKET, else \(defaultSocket)) and prints the reply as
    tables; --json prints the raw reply lines. Several commands, separated by ';' or read one per
    line from stdin, share one connection. `switchyard ctl help` lists the commands. Exit 1
    when a reply is ok:false or the socket cannot be reached.

    Transactions: a transaction lives as long as its connection, and ctl's connection ends when
    ctl exits, so `begin` must come with its `commit` (or `abort`) in the same invocation; a lone
    `switchyard ctl begin` is refused (it could only open a transaction and drop it).

    A fleet: with several --socket (instances on one host, or sockets forwarded from pods), the
    changes are applied all-or-nothing: ctl opens a transaction on every instance, stages every
    change on each, commits only when every instance staged them all, and aborts on every
    instance otherwise; it prints the result per instance. `show` and `help` alone run on each.

    Fleet mode (a "fleet" section: the state shared through etcd): a change made on any one
    instance reaches every instance; its reply names the etcd revision. --wait[=SECONDS]
    (10 by default) then waits until every live instance has applied that revision, and names
    those that have not when the time is up (exit 1). With --etcd (and --prefix) ctl needs no
    socket: it reads the fleet's state from etcd, checks each change against FILE (the
    instances' config; its "fleet" section gives the TLS and credentials, and the endpoints
    and prefix when --etcd and --prefix are left out) and writes it as one etcd transaction.
    It warms nothing up: a flip of an upstream with warm-up needs --no-warmup there.

    examples:
      switchyard ctl flip checkout
      switchyard ctl set weights shop stable=80 canary=20
      switchyard ctl begin ';' set weights shop stable=0 canary=100 ';' flip checkout ';' commit
      switchyard ctl --socket /run/a.sock --socket /run/b.sock flip checkout
      switchyard ctl flip checkout --bake 300 --revert-if-error-rate 0.02 --revert-if-p99-ms 800
      switchyard ctl begin ';' flip checkout ';' set weights shop canary=0 ';' commit --bake 120 --revert-if-error-rate 0.05
      switchyard ctl show guards

    Guarded changes: flip, set live, set weights, endpoint add|remove|drain, begin and commit
    take --bake SECONDS with --revert-if-error-rate R (5xx share, 0.05 or 5%) and/or
    --revert-if-p99-ms MS and/or --revert-if-p99-ratio X (against the route's other variants,
    or the pool that served before) (and --min-requests N, default 10). The reply comes at once; if what
    the change moved traffic to breaches a limit during the bake, the change is reverted in one
    commit (see `show guards`, switchyard_guarded_reverts_total).

    """

    static func main(_ args: [String]) -> Int32 {
        var socketPath: String?
        var fleet: [String] = []
        var configPath: String?
        var json = false
        var wait: Double?
        var etcd: [String] = []
        var prefix: String?
        var i = 0
        // Options come first; everything after belongs to the command (`flip x --no-warmup`).
        while i < args.count, args[i].hasPrefix("-") {
            let a = args[i]
            switch a {
            case "--json": json = true
            case "--wait": wait = 10
            case "--help", "-h":
                print(usage, terminator: "")
                return 0
            case "--socket", "--config", "--etcd", "--prefix":
                guard i + 1 < args.count else {
                    CLI.fail("ctl: \(a) needs a value")
                    return 1
                }
                switch a {
                case "--socket": socketPath = args[i + 1]; fleet.append(args[i + 1])
                case "--etcd": etcd += args[i + 1].split(separator: ",").map(String.init)
                case "--prefix": prefix = args[i + 1]
                default: configPath = args[i + 1]
                }
                i += 1
            default:
                if a.hasPrefix("--socket=") {
                    socketPath = String(a.dropFirst("--socket=".count))
                    fleet.append(socketPath!)
                } else if a.hasPrefix("--wait=") {
                    guard let seconds = Double(a.dropFirst("--wait=".count)), seconds.isFinite, seconds > 0, seconds <= 3600 else {
                        CLI.fail("ctl: --wait=SECONDS takes a number of seconds from 0 to 3600, got '\(a.dropFirst("--wait=".count))'")
                        return 1
                    }
                    wait = seconds
                } else if a.hasPrefix("--config=") {
                    configPath = String(a.dropFirst("--config=".count))
                } else {
                    CLI.fail("ctl: unknown option '\(a)' (options go before the command; see switchyard ctl --help)")
                    return 1
                }
            }
            i += 1
        }
        if !etcd.isEmpty || prefix != nil {
            guard socketPath == nil else {
                CLI.fail("ctl: --etcd changes the fleet's state in etcd directly; give it or --socket, not both")
                return 1
            }
            guard let commands = commandLines(Array(args[i...])) else { return 1 }
            return CtlEtcd(endpoints: etcd, prefix: prefix, configPath: configPath, json: json, wait: wait).run(commands)
        }
        if socketPath == nil, let configPath {
            do {
                let loaded = try ConfigLoader.load(path: configPath)
                guard let control = loaded.config.control else {
                    CLI.fail("ctl: \(configPath) has no \"control\" section")
                    return 1
                }
                socketPath = control.socket
            } catch {
                CLI.fail("ctl: \(error)")
                return 1
            }
        }
        let path = socketPath ?? ProcessInfo.processInfo.environment["SWITCHYARD_SOCKET"] ?? defaultSocket

        guard let commands = commandLines(Array(args[i...])) else { return 1 }
        if fleet.count > 1 { return CtlFleet(sockets: fleet, json: json).run(commands) }
        if let problem = unfinishedTransaction(commands) {
            CLI.fail("ctl: \(problem)")
            return 1
        }

        let client: ControlClient
        do { client = try ControlClient(path: path) } catch {
            CLI.fail("ctl: \(error)")
            return 1
        }
        var failed = false
        for (n, command) in commands.enumerated() {
            do {
                try client.send(command)
                guard let line = try client.readLine() else {
                    CLI.fail("ctl: the control socket closed the connection")
                    return 1
                }
                let reply = ControlValue(json: line)
                if reply?["ok"]?.bool != true { failed = true }
                if json {
                    print(line)
                } else {
                    if commands.count > 1 { print("\(n > 0 ? "\n" : "")> \(command)") }
                    print(reply.map(ControlFormat.render) ?? line)
                }
                // Fleet mode: wait until every live instance has applied the change's revision.
                if let wait, let revision = reply?["revision"]?.int, reply?["ok"]?.bool == true {
                    if !CtlWait(client: client, json: json).run(revision: revision, seconds: wait) { failed = true }
                }
            } catch {
                CLI.fail("ctl: \(error)")
                return 1
            }
        }
        return failed ? 1 : 0
    }

    /// The command lines in `words` (separated by ';'), or read one per line from stdin when
    /// there are none; blank and `#` lines left out. nil (said on stderr) when there is none.
    static func commandLines(_ words: [String]) -> [String]? {
        var commands: [String] = []
        if words.isEmpty {
            guard isatty(0) == 0 else {
                CLI.fail("ctl: no command (try: switchyard ctl help)")
                return nil
            }
            while let line = readLine() { commands.append(line) }
        } else {
            var current: [String] = []
            for w in words {
                if w == ";" {
                    if !current.isEmpty { commands.append(current.map(quote).joined(separator: " ")) }
                    current = []
                } else {
                    current.append(w)
                }
            }
            if !current.isEmpty { commands.append(current.map(quote).joined(separator: " ")) }
        }
        commands = commands.filter {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#")
        }
        guard !commands.isEmpty else {
            CLI.fail("ctl: no command (try: switchyard ctl help)")
            return nil
        }
        return commands
    }

    /// Why `commands` would open a transaction that ctl's exit drops, or nil: each `begin` must
    /// be followed by a `commit` or an `abort` in the same invocation.
    static func unfinishedTransaction(_ commands: [String]) -> String? {
        var open = false
        for command in commands {
            switch command.split(separator: " ").first.map(String.init) ?? "" {
            case "begin": open = true
            case "commit", "abort": open = false
            default: break
            }
        }
        guard open else { return nil }
        return "refused: `begin` without `commit` or `abort` in the same invocation; a transaction lives as long as "
            + "its connection, and this one ends when ctl exits, so the staged changes would be dropped. Give the whole "
            + "transaction at once: switchyard ctl begin ';' CHANGE ';' CHANGE ';' commit (or one command per line on stdin)"
    }

    /// Keeps a word with blanks one word on the other side.
    private static func quote(_ word: String) -> String {
        word.contains(where: { $0 == " " || $0 == "\t" }) ? "\"\(word)\"" : word
    }
}
