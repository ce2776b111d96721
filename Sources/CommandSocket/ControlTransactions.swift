// begin / commit / abort: a connection's staged changes, validated as staged and replayed at
// commit as one snapshot swap, checked whole; abort, or the connection closing, drops them.
import Config
import Runtime
import Rollouts
enum ControlTransactions {
    static func begin(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        if let t = c.session.transaction {
            throw ControlError("a transaction is already open (\(t.changes.count) staged); commit or abort it first")
        }
        c.session.transaction = Transaction(config: c.state.config, base: c.state.version, guarded: c.guarded)
        var reply: ControlValue = ["transaction": "open", "version": ControlValue(c.state.version)]
        if let guarded = c.guarded { reply.set("guard", guarded.value) }
        return .reply(reply)
    }

    static func commit(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        guard let t = c.session.transaction else { throw ControlError("commit: no transaction is open (begin first)") }
        c.session.transaction = nil
        let summaries = ControlValue(t.changes.map(\.summary))
        guard !t.changes.isEmpty else {
            return .reply(["version": ControlValue(c.state.version), "committed": 0, "changes": summaries])
        }
        let result: RuntimeState.CommitResult
        let watch: ControlValue?
        do { (result, watch) = try c.guards.commit(t.changes, guarded: c.guarded ?? t.guarded) } catch {
            throw ControlError("commit: \(error.message) (the transaction is closed)", details: error.details)
        }
        c.state.log("committed \(t.changes.count) change(s) as version \(result.version): "
            + t.changes.map(\.summary).joined(separator: "; "))
        var reply: ControlValue = ["version": ControlValue(result.version), "committed": .int(t.changes.count), "changes": summaries]
        reply.set("commitMs", .double(result.commitMs))
        if let failure = result.saveFailure { reply.set("stateFileError", .string(failure)) }
        result.addFleet(to: &reply)
        if let watch { reply.set("guard", watch) }
        return .reply(reply)
    }

    static func abort(_ c: CommandContext) throws(ControlError) -> CommandOutcome {
        _ = try c.expect(0)
        guard let t = c.session.transaction else { throw ControlError("abort: no transaction is open") }
        c.session.transaction = nil
        return .reply(["aborted": .int(t.changes.count), "version": ControlValue(c.state.version)])
    }
}
