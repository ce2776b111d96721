// libFuzzer target: the saved rollouts of a state file as the proxy loads them at start. The
// bytes decode as StateFile.load decodes them (JSONDecoder, the same Codable types) or are
// refused; each rollout is kept only when `RolloutStatus.problem()` finds nothing (the check
// Overrides.applied(to:) makes), and every kept one is run on: its clock, steps, weights and
// gauges must never trap, whatever a hand edit put there. (Weights, mirrors and endpoints from
// the file are held to the command's rules by HostileStateFileTests.)
import Foundation

private struct Document: Codable {
    var version: Int
    var overrides: Saved
}

private struct Saved: Codable {
    var rollouts: [String: RolloutStatus]?
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStateFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let document = try? JSONDecoder().decode(Document.self, from: Data(bytes: data, count: size)),
          document.version == 1 else { return 0 }
    for (_, saved) in document.overrides.rollouts ?? [:] {
        guard saved.problem() == nil else { continue }
        var status = saved
        let base = status.stepStartedAt
        _ = status.nextStepAt()
        _ = status.weightAt(status.step)
        _ = status.step < 0 ? 0 : UInt64(status.step) + 1
        status.resumeAfterRestart(now: base, reading: status.mark)
        for now in [base, base + 1, base + Double(status.plan.stepSeconds) + 1, base + 1e9, status.plan.startAt ?? base, -base] {
            _ = status.clockStep(now)
            _ = status.tick(now: now, reading: status.mark)
            precondition((0...100).contains(status.weight), "a weight that is not a percent")
            precondition((-1..<status.plan.steps.count).contains(status.step), "a step outside the plan")
            _ = status.nextStepAt()
        }
        _ = status.pause(now: base + 2, why: "fuzz")
        _ = status.resume(now: base + 3, reading: status.mark)
        _ = status.tick(now: base + 4, reading: RolloutReading())
        _ = status.promote(now: base + 5)
        // What is kept saves and loads back as itself.
        guard let again = try? JSONEncoder().encode(saved),
              let back = try? JSONDecoder().decode(RolloutStatus.self, from: again) else {
            preconditionFailure("a kept rollout does not save and load back")
        }
        precondition(back.problem() == nil, "a kept rollout changed on the way back")
    }
    return 0
}
