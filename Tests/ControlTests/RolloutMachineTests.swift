// The rollout state machine with an injected clock and counter readings: steps, waits on
// minRequests up to maxStepSeconds, each gate, the window, pause/resume, promote/abort, rollback,
// and the clock-driven steps of fleet mode.
@testable import Admin
@testable import CommandSocket
@testable import Config
@testable import Rollouts
@testable import Runtime
import XCTest

final class RolloutMachineTests: XCTestCase {
    /// A reading with `variant` requests of which `errors` failed; latency all in bucket `slow`.
    static func counts(_ requests: UInt64, _ errors: UInt64 = 0, bucket: Int = 3) -> VariantCounts {
        var buckets = [UInt64](repeating: 0, count: RolloutLatency.boundsSeconds.count + 1)
        buckets[bucket] = requests
        return VariantCounts(requests: requests, errors: errors, buckets: buckets)
    }

    static func reading(_ v: VariantCounts, _ b: VariantCounts = counts(0)) -> RolloutReading {
        RolloutReading(variant: v, baseline: b)
    }

    func plan(steps: [Int] = [10, 50, 100], seconds: Int = 60, gates: RolloutGates = RolloutGates(),
              maxStep: Int? = nil, window: RolloutWindow? = nil, startAt: Double? = nil) -> RolloutPlan {
        RolloutPlan(variant: "canary", baseline: "stable", steps: steps, stepSeconds: seconds, maxStepSeconds: maxStep,
                    gates: gates, window: window, startAt: startAt)
    }

    func testHealthyRolloutWalksEveryStepThenPromotes() {
        var s = RolloutStatus(plan: plan(), origin: "control", now: 1000, reading: Self.reading(Self.counts(0)))
        XCTAssertEqual(s.tick(now: 1000, reading: Self.reading(Self.counts(0))).weight, 10)
        XCTAssertEqual(s.state, .running)
        XCTAssertEqual(s.nextStepAt(), 1060)
        XCTAssertNil(s.tick(now: 1059, reading: Self.reading(Self.counts(5))).weight, "not before stepSeconds")
        XCTAssertEqual(s.tick(now: 1060, reading: Self.reading(Self.counts(5))).weight, 50)
        XCTAssertEqual(s.tick(now: 1120, reading: Self.reading(Self.counts(9))).weight, 100)
        let last = s.tick(now: 1180, reading: Self.reading(Self.counts(12)))
        XCTAssertEqual(last.weight, 100)
        XCTAssertEqual(s.state, .promoted)
        XCTAssertEqual(s.history.filter { $0.kind == "step" }.map(\.at), [1000, 1060, 1120])
        XCTAssertEqual(s.history.last?.kind, "promote")
        XCTAssertTrue(s.tick(now: 9999, reading: Self.reading(Self.counts(99))) == RolloutEffects(), "finished stays finished")
    }

    func testABlueGreenReleaseShadowsTheIdleColorBeforeItFlips() {
        let shadow = RolloutShadowPlan(upstream: "checkout", minCompared: 100, minMatchRate: 0.99)
        let flip = RolloutFlipPlan(upstream: "checkout", bakeSeconds: 60)
        let release = RolloutPlan(variant: "checkout", baseline: "checkout", steps: [100], stepSeconds: 60,
                                  gates: RolloutGates(maxErrorRate: 0.1), shadow: shadow, flip: flip)
        var s = RolloutStatus(plan: release, origin: "config", now: 0, reading: RolloutReading())
        let first = s.tick(now: 0, reading: RolloutReading(), shadow: ShadowReading())
        XCTAssertEqual(s.state, .shadowing)
        XCTAssertFalse(first.flip, "no flip before the shadow passes")
        XCTAssertEqual(first.mirror, RolloutMirrorEffect(upstream: "checkout", percent: 100))
        XCTAssertTrue(s.history.last?.detail.contains("the idle color of checkout") == true, "\(s.history)")
        XCTAssertFalse(s.tick(now: 5, reading: RolloutReading(), shadow: ShadowReading(compared: 99, matched: 99)).flip,
                       "too few comparisons")
        XCTAssertEqual(s.state, .shadowing)
        let passed = s.tick(now: 6, reading: RolloutReading(), shadow: ShadowReading(compared: 100, matched: 100))
        XCTAssertTrue(passed.flip)
        XCTAssertEqual(passed.mirror?.percent, 0, "the copies stop with the flip")
        XCTAssertEqual(s.state, .baking)
        XCTAssertEqual(passed.events.map(\.kind), ["shadow_passed", "flip"])
        XCTAssertTrue(s.tick(now: 7, reading: RolloutReading(), flipped: nil) == RolloutEffects(), "bakes")
        _ = s.tick(now: 70, reading: RolloutReading(), flipped: FlipOutcome(passed: true, detail: "guard 1 passed"))
        XCTAssertEqual(s.state, .promoted)

        var bad = RolloutStatus(plan: release, origin: "config", now: 0, reading: RolloutReading())
        _ = bad.tick(now: 0, reading: RolloutReading(), shadow: ShadowReading())
        let failed = bad.tick(now: 9, reading: RolloutReading(),
                              shadow: ShadowReading(compared: 100, matched: 90, mismatches: ["GET /: status 200 vs 500"]))
        XCTAssertFalse(failed.flip)
        XCTAssertEqual(failed.mirror?.percent, 0)
        XCTAssertEqual(bad.state, .rolledBack)
        XCTAssertTrue(bad.reason?.contains("not flipped") == true, bad.reason ?? "")
        XCTAssertTrue(bad.reason?.contains("status 200 vs 500") == true, bad.reason ?? "")

        // The operator ends the stage: the copies stop with it, and a promote flips.
        var promoted = RolloutStatus(plan: release, origin: "config", now: 0, reading: RolloutReading())
        _ = promoted.tick(now: 0, reading: RolloutReading(), shadow: ShadowReading())
        let p = promoted.promote(now: 3)
        XCTAssertEqual(p.mirror?.percent, 0)
        XCTAssertTrue(p.flip)
        XCTAssertEqual(promoted.state, .baking)
        var aborted = RolloutStatus(plan: release, origin: "config", now: 0, reading: RolloutReading())
        _ = aborted.tick(now: 0, reading: RolloutReading(), shadow: ShadowReading())
        XCTAssertEqual(aborted.abort(now: 3).mirror?.percent, 0)
        XCTAssertEqual(aborted.state, .aborted)
    }

    func testACanaryOfTheIdleColorEndsInAFlipInsteadOfAPromotion() {
        let flip = RolloutFlipPlan(upstream: "checkout", bakeSeconds: 60)
        let release = RolloutPlan(variant: "next", baseline: "stable", steps: [50, 100], stepSeconds: 60,
                                  gates: RolloutGates(maxErrorRate: 0.1), flip: flip)
        XCTAssertTrue(release.flipsAfterSteps)
        var s = RolloutStatus(plan: release, origin: "config", now: 0, reading: Self.reading(Self.counts(0)))
        XCTAssertEqual(s.tick(now: 0, reading: Self.reading(Self.counts(0))).weight, 50, "steps first")
        XCTAssertEqual(s.tick(now: 60, reading: Self.reading(Self.counts(10))).weight, 100)
        let last = s.tick(now: 120, reading: Self.reading(Self.counts(20)))
        XCTAssertTrue(last.flip, "the last step ends in the flip")
        XCTAssertNil(last.weight, "the flip's commit sets the weights")
        XCTAssertEqual(s.state, .baking)
        XCTAssertEqual(s.step, 1)
        XCTAssertTrue(s.tick(now: 130, reading: Self.reading(Self.counts(99, 50))) == RolloutEffects(),
                      "while it bakes the guard judges, not the step's gates")
        let done = s.tick(now: 180, reading: Self.reading(Self.counts(99)), flipped: FlipOutcome(passed: false, detail: "guard 1 reverted"))
        XCTAssertEqual(s.state, .rolledBack)
        XCTAssertNil(done.weight, "the guard flipped back; the weights stay")

        var early = RolloutStatus(plan: release, origin: "config", now: 0, reading: Self.reading(Self.counts(0)))
        _ = early.tick(now: 0, reading: Self.reading(Self.counts(0)))
        let promoted = early.promote(now: 5)
        XCTAssertTrue(promoted.flip, "an operator's promote flips too")
        XCTAssertEqual(early.state, .baking)
    }

    func testPresets() {
        XCTAssertEqual(RolloutPlan.presets["canary-10-5m"]?.steps, [10, 100])
        XCTAssertEqual(RolloutPlan.presets["canary-10-5m"]?.stepSeconds, 300)
        XCTAssertEqual(RolloutPlan.presets["linear-10-1m"]?.steps, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        XCTAssertEqual(RolloutPlan.presets["linear-10-1m"]?.stepSeconds, 60)
        var s = RolloutStatus(plan: plan(steps: [100], seconds: 0), origin: "config", now: 0, reading: RolloutReading())
        XCTAssertEqual(s.tick(now: 0, reading: RolloutReading()).weight, 100)
        _ = s.tick(now: 0, reading: RolloutReading())
        XCTAssertEqual(s.state, .promoted, "all-at-once: 100% then promoted")
    }

    func testStepsValidation() {
        let table: [([Int], String?)] = [
            ([10, 50, 100], nil), ([100], nil), ([], "at least one"), ([0, 100], "from 1 to 100"),
            ([50, 10, 100], "increase"), ([10, 50], "last step must be 100"), ([10, 10, 100], "increase"),
        ]
        for (steps, fragment) in table {
            let problem = RolloutPlan.stepsProblem(steps)
            if let fragment { XCTAssertTrue(problem?.contains(fragment) == true, "\(steps): \(problem ?? "nil")") } else { XCTAssertNil(problem) }
        }
    }

    func testMinRequestsWaitsThenRollsBackAtMaxStepSeconds() {
        let p = plan(gates: RolloutGates(maxErrorRate: 0.05, minRequests: 100), maxStep: 300)
        var s = RolloutStatus(plan: p, origin: "control", now: 0, reading: RolloutReading())
        _ = s.tick(now: 0, reading: RolloutReading())
        XCTAssertNil(s.tick(now: 60, reading: Self.reading(Self.counts(40))).weight)
        XCTAssertEqual(s.state, .waiting)
        XCTAssertTrue(s.reason?.contains("40 of 100") == true, s.reason ?? "")
        XCTAssertEqual(s.weight, 10, "waiting keeps the weight")
        XCTAssertEqual(s.tick(now: 200, reading: Self.reading(Self.counts(100))).weight, 50, "enough requests: advances")
        // The next step never gets enough traffic.
        XCTAssertNil(s.tick(now: 400, reading: Self.reading(Self.counts(150))).weight)
        XCTAssertEqual(s.tick(now: 500, reading: Self.reading(Self.counts(150))).weight, 0)
        XCTAssertEqual(s.state, .rolledBack)
        XCTAssertTrue(s.reason?.contains("minRequests") == true, s.reason ?? "")
    }

    func testEachGate() {
        struct Case { var gates: RolloutGates; var variant: VariantCounts; var baseline: VariantCounts; var fails: String? }
        let c = Self.counts
        let table: [Case] = [
            Case(gates: RolloutGates(maxErrorRate: 0.05), variant: c(100, 4, 3), baseline: c(900, 0, 3), fails: nil),
            Case(gates: RolloutGates(maxErrorRate: 0.05), variant: c(100, 10, 3), baseline: c(900, 0, 3), fails: "maxErrorRate 0.1 > 0.05"),
            Case(gates: RolloutGates(maxErrorRateRatio: 2), variant: c(100, 2, 3), baseline: c(1000, 10, 3), fails: nil),
            Case(gates: RolloutGates(maxErrorRateRatio: 2), variant: c(100, 3, 3), baseline: c(1000, 10, 3), fails: "maxErrorRateRatio 3 > 2"),
            Case(gates: RolloutGates(maxErrorRateRatio: 2), variant: c(100, 1, 3), baseline: c(1000, 0, 3), fails: "maxErrorRateRatio inf > 2"),
            Case(gates: RolloutGates(maxErrorRateRatio: 2), variant: c(100, 0, 3), baseline: c(1000, 0, 3), fails: nil),
            Case(gates: RolloutGates(maxP99Ratio: 1.5), variant: c(100, 0, 4), baseline: c(1000, 0, 3), fails: "maxP99Ratio 2 > 1.5"),
            Case(gates: RolloutGates(maxP99Ratio: 2), variant: c(100, 0, 4), baseline: c(1000, 0, 3), fails: nil),
            // No baseline traffic: the ratio gates cannot be judged and do not fail.
            Case(gates: RolloutGates(maxErrorRateRatio: 1, maxP99Ratio: 1), variant: c(100, 5, 9), baseline: c(0, 0, 3), fails: nil),
        ]
        for (i, t) in table.enumerated() {
            var s = RolloutStatus(plan: plan(gates: t.gates), origin: "control", now: 0, reading: RolloutReading())
            _ = s.tick(now: 0, reading: RolloutReading())
            let e = s.tick(now: 60, reading: RolloutReading(variant: t.variant, baseline: t.baseline))
            if let fails = t.fails {
                XCTAssertEqual(e.weight, 0, "case \(i)")
                XCTAssertEqual(s.state, .rolledBack, "case \(i)")
                XCTAssertTrue(s.reason?.contains(fails) == true, "case \(i): \(s.reason ?? "nil")")
                XCTAssertEqual(e.events.last?.kind, "rollback")
            } else {
                XCTAssertEqual(e.weight, 50, "case \(i): \(s.reason ?? "")")
                XCTAssertEqual(s.state, .running, "case \(i)")
            }
        }
    }

    func testGatesJudgeOnlyTheStepsOwnCounters() {
        // 50 errors before the step began do not count against it.
        var s = RolloutStatus(plan: plan(gates: RolloutGates(maxErrorRate: 0.01)), origin: "control", now: 0,
                              reading: RolloutReading())
        _ = s.tick(now: 0, reading: Self.reading(Self.counts(100, 50)))
        XCTAssertEqual(s.tick(now: 60, reading: Self.reading(Self.counts(200, 50))).weight, 50)
    }

    func testWindowHoldsStepsOutside() {
        // 1970-01-01 00:00 UTC is t=0; the window is 02:00-05:00 UTC.
        let w = RolloutWindow(start: 120, end: 300, timeZone: "UTC")
        XCTAssertFalse(w.contains(3600))
        XCTAssertTrue(w.contains(7200))
        XCTAssertFalse(w.contains(5 * 3600))
        XCTAssertTrue(RolloutWindow(start: 22 * 60, end: 60, timeZone: "UTC").contains(23 * 3600), "crosses midnight")
        XCTAssertEqual(RolloutWindow.minutes("02:30"), 150)
        XCTAssertNil(RolloutWindow.minutes("2:30"))
        XCTAssertNil(RolloutWindow.minutes("24:00"))
        var s = RolloutStatus(plan: plan(window: w), origin: "config", now: 0, reading: RolloutReading())
        XCTAssertNil(s.tick(now: 3600, reading: RolloutReading()).weight)
        XCTAssertEqual(s.state, .waiting)
        XCTAssertTrue(s.reason?.contains("window") == true)
        XCTAssertEqual(s.tick(now: 7200, reading: RolloutReading()).weight, 10)
        XCTAssertEqual(s.tick(now: 7260, reading: RolloutReading()).weight, 50)
        XCTAssertNil(s.tick(now: 5 * 3600, reading: RolloutReading()).weight, "the window closed: the step holds")
        XCTAssertEqual(s.weight, 50)
        XCTAssertEqual(s.tick(now: 86400 + 7200, reading: RolloutReading()).weight, 100, "next night")
    }

    func testPauseResumePromoteAbort() {
        var s = RolloutStatus(plan: plan(), origin: "control", now: 0, reading: RolloutReading())
        _ = s.tick(now: 0, reading: RolloutReading())
        XCTAssertTrue(s.pause(now: 10).changed)
        XCTAssertEqual(s.state, .paused)
        XCTAssertNil(s.tick(now: 500, reading: RolloutReading()).weight, "paused: no step")
        XCTAssertNil(s.nextStepAt())
        _ = s.resume(now: 500, reading: RolloutReading())
        XCTAssertEqual(s.state, .running)
        XCTAssertNil(s.tick(now: 559, reading: RolloutReading()).weight, "a resumed step runs its full length again")
        XCTAssertEqual(s.tick(now: 560, reading: RolloutReading()).weight, 50)
        var promoted = s
        XCTAssertEqual(promoted.promote(now: 600).weight, 100)
        XCTAssertEqual(promoted.state, .promoted)
        XCTAssertFalse(promoted.abort(now: 601).changed, "finished")
        var aborted = s
        XCTAssertEqual(aborted.abort(now: 600).weight, 0)
        XCTAssertEqual(aborted.state, .aborted)
        XCTAssertEqual(aborted.reason, "aborted by the operator")
    }

    func testRestartContinuesAtTheStepReached() throws {
        var s = RolloutStatus(plan: plan(gates: RolloutGates(maxErrorRate: 0.1)), origin: "control", now: 0, reading: RolloutReading())
        _ = s.tick(now: 0, reading: RolloutReading())
        _ = s.tick(now: 60, reading: Self.reading(Self.counts(1000)))
        XCTAssertEqual(s.weight, 50)
        // Saved and loaded as the state file does; the new process's counters start at zero.
        var loaded = try JSONDecoder().decode(RolloutStatus.self, from: JSONEncoder().encode(s))
        XCTAssertEqual(loaded, s)
        loaded.resumeAfterRestart(now: 100, reading: RolloutReading())
        XCTAssertNil(loaded.tick(now: 150, reading: Self.reading(Self.counts(10))).weight, "the step's clock began again")
        XCTAssertEqual(loaded.tick(now: 160, reading: Self.reading(Self.counts(10))).weight, 100)
        XCTAssertEqual(loaded.history.filter { $0.kind == "step" }.count, 3, "history kept")
    }

    func testStartAtStepsByTheClock() {
        let p = plan(seconds: 60, gates: RolloutGates(maxErrorRate: 0.1, minRequests: 50), startAt: 1000)
        var s = RolloutStatus(plan: p, origin: "config", now: 900, reading: RolloutReading())
        XCTAssertNil(s.tick(now: 999, reading: RolloutReading()).weight)
        XCTAssertEqual(s.state, .waiting)
        XCTAssertTrue(s.reason?.hasPrefix("starts at 1970-01-01T00:16:40Z") == true, s.reason ?? "")
        XCTAssertEqual(s.tick(now: 1000.5, reading: RolloutReading()).weight, 10)
        XCTAssertEqual(s.nextStepAt(), 1060, "boundaries are startAt + n * stepSeconds, not from when this instance got there")
        // Too few requests: by the clock the step still advances (every instance moves together).
        XCTAssertEqual(s.tick(now: 1061, reading: Self.reading(Self.counts(3))).weight, 50)
        // An instance that started late joins at the step the clock says.
        var late = RolloutStatus(plan: p, origin: "config", now: 1100, reading: RolloutReading())
        XCTAssertEqual(late.tick(now: 1100, reading: RolloutReading()).weight, 50)
        // A failing gate at a boundary rolls back.
        XCTAssertEqual(s.tick(now: 1120, reading: Self.reading(Self.counts(103, 30))).weight, 0)
        XCTAssertEqual(s.state, .rolledBack)
    }
}
