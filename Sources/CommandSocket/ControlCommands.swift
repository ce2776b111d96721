// The command table (name, usage, handler; `help` is generated from it) and the engine that runs
// one line: lookup with "did you mean", handler, then a reply, a committed change or a staged one.
import Config
import Dispatch
import Proxy
import Rollouts
import Routing
import Runtime
import Synchronization

struct ControlCommand: Sendable {
    /// One or two words: `flip`, `show routes`, `endpoint drain`.
    let name: String
    /// Argument synopsis after the name (without the guard options: `usage` adds them).
    let arguments: String
    let summary: String
    /// Changes the runtime state: validated against a transaction's staged config, and staged
    /// while one is open.
    let makesChange: Bool
    /// Takes `--bake ... --revert-if-...` (GuardOptions.swift, Guards.swift).
    let acceptsGuard: Bool
    let run: @Sendable (CommandContext) throws(ControlError) -> CommandOutcome

    init(name: String, arguments: String, summary: String, makesChange: Bool = false, acceptsGuard: Bool = false,
         run: @escaping @Sendable (CommandContext) throws(ControlError) -> CommandOutcome) {
        self.name = name
        self.arguments = arguments
        self.summary = summary
        self.makesChange = makesChange
        self.acceptsGuard = acceptsGuard
        self.run = run
    }

    var usage: String {
        let all = acceptsGuard ? [arguments, GuardOptions.usage].filter { !$0.isEmpty }.joined(separator: " ") : arguments
        return all.isEmpty ? name : "\(name) \(all)"
    }
    var words: [String] { name.split(separator: " ").map(String.init) }
}

enum CommandOutcome {
    case reply(ControlValue)
    /// A change and the reply members that describe it: committed at once, or staged when the
    /// session is in a transaction.
    case change(RuntimeChange, ControlValue)
    /// Reply, then close the connection.
    case close(ControlValue)
    /// A change that must wait for a warm-up of the color it makes live. The warm-up runs on
    /// an event loop; the state queue goes on with other clients' commands meanwhile.
    case afterWarmup(PendingWarmup)
}

/// A flip or `set live` waiting for its warm-up.
struct PendingWarmup: Sendable {
    let upstream: String
    let color: Color
    /// The live color when the warm-up started: the change applies only if it still is.
    let previous: Color
    let warmup: Config.Warmup
    /// Where the GETs go (`Warmup.targets`).
    let targets: [WarmupTarget]
    let labels: [String]
    let failure: String?
    /// Reply members describing the change.
    let value: ControlValue
}

/// What a handler sees.
struct CommandContext {
    let engine: ControlEngine
    let session: ControlSession
    let command: ControlCommand
    /// The words after the command's name.
    let args: [String]
    /// What commands validate against: the transaction's staged config, or the effective one.
    let config: Config
    /// The guard options given with the command (only those that accept them).
    var guarded: GuardOptions? = nil

    var state: RuntimeState { engine.state }
    var rollouts: RolloutRunner { engine.automation.rollouts }
    var guards: GuardBoard { engine.automation.guards }

    func usageError(_ why: String) -> ControlError {
        ControlError("\(why); usage: \(command.usage)")
    }

    /// The arguments, checked for count (`optional` more allowed).
    func expect(_ count: Int, optional: Int = 0) throws(ControlError) -> [String] {
        if args.count < count { throw usageError("\(command.name): missing arguments") }
        if args.count > count + optional {
            throw usageError("\(command.name): unexpected \"\(args[count + optional])\"")
        }
        return args
    }
}

/// One client connection's state: its transaction, if one is open.
public final class ControlSession: @unchecked Sendable {
    public let id: Int
    var transaction: Transaction?
    /// After `quit`: lines already pipelined behind it are neither run nor answered.
    var quit = false

    init(id: Int) { self.id = id }

    public var inTransaction: Bool { transaction != nil }
}

public final class ControlEngine: @unchecked Sendable {
    public let state: RuntimeState
    /// Rollouts and guards: `rollout ...`, `show guards` and `--bake` reach them here.
    public let automation: ReleaseAutomation
    private let sessions = Atomic<Int>(0)

    public init(state: RuntimeState, automation: ReleaseAutomation) {
        self.state = state
        self.automation = automation
    }

    static let table: [ControlCommand] = [
        ControlCommand(name: "help", arguments: "[COMMAND]", summary: "list the commands, or show one command's usage",
                       run: ControlEngine.help),
        ControlCommand(name: "show routes", arguments: "", summary: "routes, their variants with weights, and mirrors",
                       run: ControlShow.routes),
        ControlCommand(name: "show upstreams", arguments: "",
                       summary: "upstreams, live colors, endpoints with weight, draining and in-flight count",
                       run: ControlShow.upstreams),
        ControlCommand(name: "show state", arguments: "",
                       summary: "runtime overrides against the config's values, state file, open transaction",
                       run: ControlShow.state),
        ControlCommand(name: "show stats", arguments: "",
                       summary: "requests per route/variant, global counters, in-flight per endpoint",
                       run: ControlShow.stats),
        ControlCommand(name: "show shadow", arguments: "[ROUTE]",
                       summary: "shadow comparisons: match rate, p50/p99 of shadow and primary, the last mismatches",
                       run: ControlShow.shadow),
        ControlCommand(name: "show experiment", arguments: "[ROUTE]",
                       summary: "A/B experiments: units per variant, the sample-ratio check, conversions per goal, the verdict",
                       run: ControlShow.experiment),
        ControlCommand(name: "show fleet", arguments: "",
                       summary: "fleet mode: the etcd store's state, the revision applied here, every live instance and stragglers",
                       run: ControlShow.fleet),
        ControlCommand(name: "flip", arguments: "UPSTREAM [--no-warmup]",
                       summary: "swap the live color of a blue/green upstream (warming the idle color first if configured)",
                       makesChange: true, acceptsGuard: true,
                       run: ControlChanges.flip),
        ControlCommand(name: "set live", arguments: "UPSTREAM blue|green [--no-warmup]",
                       summary: "make a color live (warming it first if it was idle and warm-up is configured)",
                       makesChange: true, acceptsGuard: true,
                       run: ControlChanges.setLive),
        ControlCommand(name: "set weights", arguments: "ROUTE VARIANT=W [VARIANT=W ...]",
                       summary: "set a route's variant weights in one step (unnamed variants keep theirs)",
                       makesChange: true, acceptsGuard: true,
                       run: ControlChanges.setWeights),
        ControlCommand(name: "set mirror", arguments: "ROUTE UPSTREAM PERCENT",
                       summary: "add or change a mirror of a route's requests; PERCENT 0 removes it",
                       makesChange: true,
                       run: ControlChanges.setMirror),
        ControlCommand(name: "endpoint add", arguments: "UPSTREAM[/COLOR] HOST:PORT",
                       summary: "add an endpoint to a pool (or resume a draining one)",
                       makesChange: true, acceptsGuard: true,
                       run: { c throws(ControlError) in try ControlChanges.endpoint(.add, c) }),
        ControlCommand(name: "endpoint remove", arguments: "UPSTREAM[/COLOR] HOST:PORT",
                       summary: "remove an endpoint; its in-flight requests finish",
                       makesChange: true, acceptsGuard: true,
                       run: { c throws(ControlError) in try ControlChanges.endpoint(.remove, c) }),
        ControlCommand(name: "endpoint drain", arguments: "UPSTREAM[/COLOR] HOST:PORT",
                       summary: "send no new requests to an endpoint; `show upstreams` counts its in-flight down to 0",
                       makesChange: true, acceptsGuard: true,
                       run: { c throws(ControlError) in try ControlChanges.endpoint(.drain, c) }),
        ControlCommand(name: "reset", arguments: "NAME",
                       summary: "drop every runtime override of the route or upstream NAME (back to the config)",
                       makesChange: true,
                       run: ControlChanges.reset),
        ControlCommand(name: "begin", arguments: "",
                       summary: "start a transaction: later changes are staged until commit",
                       acceptsGuard: true,
                       run: ControlTransactions.begin),
        ControlCommand(name: "commit", arguments: "",
                       summary: "apply the staged changes as one snapshot swap (with --bake: reverted together on a breach)",
                       acceptsGuard: true,
                       run: ControlTransactions.commit),
        ControlCommand(name: "abort", arguments: "", summary: "drop the staged changes",
                       run: ControlTransactions.abort),
        ControlCommand(name: "reload", arguments: "",
                       summary: "re-read the config file; an invalid file is refused and the old config keeps serving",
                       run: ControlEngine.reload),
        ControlCommand(name: "quit", arguments: "", summary: "close this connection (a transaction still open is aborted)",
                       run: { _ throws(ControlError) in .close(["bye": true]) }),
        ControlCommand(name: "rollout start", arguments: ControlRollout.startArguments,
                       summary: "shift a route's traffic to VARIANT step by step, gated on its errors and p99; rolls back on a failed gate",
                       run: ControlRollout.start),
        ControlCommand(name: "rollout pause", arguments: "ROUTE", summary: "hold a rollout at its step",
                       run: ControlRollout.verb(.pause)),
        ControlCommand(name: "rollout resume", arguments: "ROUTE", summary: "go on with a paused rollout (its step runs again in full)",
                       run: ControlRollout.verb(.resume)),
        ControlCommand(name: "rollout approve", arguments: "ROUTE", summary: "let the next step begin where the plan waits for approval",
                       run: ControlRollout.verb(.approve)),
        ControlCommand(name: "rollout promote", arguments: "ROUTE", summary: "end a rollout now with the variant at 100%",
                       run: ControlRollout.verb(.promote)),
        ControlCommand(name: "rollout abort", arguments: "ROUTE", summary: "end a rollout now with the variant at 0%",
                       run: ControlRollout.verb(.abort)),
        ControlCommand(name: "show rollout", arguments: "[ROUTE]",
                       summary: "rollouts: state, step, weight, time to the next step, gate readings, history",
                       run: ControlRollout.show),
        ControlCommand(name: "show guards", arguments: "",
                       summary: "guarded changes (--bake): baking ones with their readings, and the outcome of the last ones",
                       run: { c throws(ControlError) in _ = try c.expect(0); return .reply(c.guards.guardsValue) }),
    ]

    /// A new connection's session.
    public func makeSession() -> ControlSession {
        ControlSession(id: sessions.add(1, ordering: .relaxed).newValue)
    }

    /// Runs one command line on the state queue and gives its reply to `answer` (nil for a blank
    /// or `#` comment line: no reply), on the state queue: at once, or after a warm-up.
    public func execute(_ line: String, session: ControlSession,
                        answer: @escaping @Sendable ((reply: ControlValue, close: Bool)?) -> Void) {
        dispatchPrecondition(condition: .onQueue(state.queue))
        let words = ControlProtocol.words(line)
        guard !session.quit, let first = words.first, !first.hasPrefix("#") else { return answer(nil) }
        do throws(ControlError) {
            let command = try Self.lookup(words)
            var args = Array(words.dropFirst(command.words.count))
            var guarded: GuardOptions?
            if command.acceptsGuard { (args, guarded) = try GuardOptions.extract(args, command: command.name) }
            if guarded != nil && session.transaction != nil && command.makesChange {
                throw ControlError("\(command.name): a staged change does not bake on its own; give --bake ... to commit (or begin)")
            }
            let outcome = try run(command, args, session, guarded)
            if case .afterWarmup(let pending) = outcome {
                warmUp(pending, session: session, guarded: guarded, answer: answer)
                return
            }
            answer(try finish(outcome, session: session, guarded: guarded))
        } catch {
            answer((ControlProtocol.failure(error.message, details: error.details), false))
        }
    }

    /// The reply to a handler's outcome: a value, a committed change, or a staged one.
    private func finish(_ outcome: CommandOutcome, session: ControlSession,
                        guarded: GuardOptions? = nil) throws(ControlError) -> (reply: ControlValue, close: Bool) {
        switch outcome {
        case .reply(let value):
            return ((["ok": true] as ControlValue).merging(value), false)
        case .close(let value):
            session.quit = true
            session.transaction = nil
            return ((["ok": true] as ControlValue).merging(value), true)
        case .change(let change, let value):
            if session.transaction != nil {
                // Edited in place through the session: a copy would duplicate every pool.
                try state.rebase(&session.transaction!)
                try state.stage(change, into: &session.transaction!)
                return ((["ok": true, "staged": true] as ControlValue).merging(value), false)
            }
            let (result, watch) = try automation.guards.commit([change], guarded: guarded)
            state.log("\(change.summary): version \(result.version)")
            var reply: ControlValue = ["ok": true, "version": ControlValue(result.version)]
            reply.set("commitMs", .double(result.commitMs))
            reply = reply.merging(value)
            if let failure = result.saveFailure { reply.set("stateFileError", .string(failure)) }
            result.addFleet(to: &reply)
            if let watch { reply.set("guard", watch) }
            return (reply, false)
        case .afterWarmup:
            throw ControlError("a warm-up cannot wait for another")
        }
    }

    /// Runs the warm-up on an event loop, then, back on the state queue, applies the change if
    /// the upstream's live color is still the one the warm-up started from.
    private func warmUp(_ p: PendingWarmup, session: ControlSession, guarded: GuardOptions?,
                        answer: @escaping @Sendable ((reply: ControlValue, close: Bool)?) -> Void) {
        let queue = state.queue
        let done: @Sendable (WarmupReport) -> Void = { [self] report in
            queue.async { [self] in
                do throws(ControlError) {
                    guard report.succeeded else {
                        throw ControlError("warm-up of \(p.upstream)/\(p.color.name) failed, nothing changed (\(p.previous.name) is still live): "
                            + (report.failure ?? ""), details: ["warmup": report.value])
                    }
                    let config = session.transaction?.config ?? state.config
                    guard case .blueGreen(let bg)? = config.upstreams.first(where: { $0.name == p.upstream })?.kind, bg.live == p.previous else {
                        throw ControlError("the live color of \(p.upstream) changed while \(p.color.name) was warming up; nothing changed",
                                           details: ["warmup": report.value])
                    }
                    var value = p.value
                    value.set("warmup", report.value)
                    answer(try finish(.change(.live(upstream: p.upstream, color: p.color), value), session: session, guarded: guarded))
                } catch {
                    answer((ControlProtocol.failure(error.message, details: error.details), false))
                }
            }
        }
        Warmup.start(p.warmup, targets: p.targets, labels: p.labels, failure: p.failure, server: state.server, done: done)
    }

    /// Runs a handler against the transaction's staged config (brought up to date first) or
    /// the effective one. Its context, and the config it holds, end here: staging then edits
    /// the transaction's config without copying it.
    private func run(_ command: ControlCommand, _ args: [String], _ session: ControlSession,
                     _ guarded: GuardOptions? = nil) throws(ControlError) -> CommandOutcome {
        if session.transaction != nil && command.makesChange { try state.rebase(&session.transaction!) }
        let context = CommandContext(engine: self, session: session, command: command, args: args,
                                     config: session.transaction?.config ?? state.config, guarded: guarded)
        return try command.run(context)
    }

    /// The connection closed: an open transaction is aborted.
    public func end(_ session: ControlSession) {
        dispatchPrecondition(condition: .onQueue(state.queue))
        session.transaction = nil
    }

    /// The command with the longest name that `words` starts with.
    static func lookup(_ words: [String]) throws(ControlError) -> ControlCommand {
        var best: ControlCommand?
        for c in table {
            let w = c.words
            if words.count >= w.count && Array(words[0..<w.count]) == w && w.count > (best?.words.count ?? 0) { best = c }
        }
        if let best { return best }
        let groups = Dictionary(grouping: table.filter { $0.words.count > 1 }, by: { $0.words[0] })
        if let group = groups[words[0]] {
            let choices = group.map { $0.words[1] }
            guard words.count > 1 else {
                throw ControlError("\"\(words[0])\" needs one of: \(choices.joined(separator: ", "))")
            }
            throw ControlError("unknown command \"\(words[0]) \(words[1])\""
                + didYouMean(words[1], among: choices, prefix: words[0] + " ") + "; try \"help\"")
        }
        // Compare with each command's name over as many words as it has.
        var suggestion: String?
        var bestDistance = Int.max
        for c in table {
            let typed = words.prefix(c.words.count).joined(separator: " ").lowercased()
            let d = ConfigTokens.editDistance(typed, c.name)
            if d < bestDistance { bestDistance = d; suggestion = c.name }
        }
        let typed = words[0]
        var message = "unknown command \"\(typed)\""
        if let suggestion, bestDistance <= max(2, suggestion.count / 3) {
            message += " (did you mean \"\(suggestion)\"?)"
        }
        throw ControlError(message + "; try \"help\"")
    }

    // MARK: help, reload

    static func help(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        if !c.args.isEmpty {
            let command = try lookup(c.args)
            return .reply(["command": .string(command.usage), "summary": .string(command.summary)])
        }
        return .reply([
            "commands": .array(table.map { ["command": .string($0.usage), "summary": .string($0.summary)] }),
            "notes": .string("one command per line, one JSON reply per line; blank and # lines are ignored; "
                + "in a transaction, changes answer {\"staged\":true} until commit"),
        ])
    }

    static func reload(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        if c.session.inTransaction { throw ControlError("reload: finish the transaction first (commit or abort)") }
        return .reply(try c.state.reload().value)
    }
}
