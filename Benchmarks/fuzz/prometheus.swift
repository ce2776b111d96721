// libFuzzer target: a Prometheus `/api/v1/query` answer as the rollout gates read it (head,
// JSON body, sample values), the counts taken from it and the gates judged on them. An answer
// is either refused with a reason or gives counts a rollout can judge: never a trap, whatever
// a scraped pod or a hostile server sends (NaN, +Inf, 1e30, negative or duplicate series).
@testable import Config
import Foundation

private let head = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPrometheus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let mode = data[0]
    let rest = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    // Bit 0: the input is the body only (most of the surface is in the JSON).
    let answer = mode & 1 != 0 ? head + rest : rest
    let samples: [PrometheusQuery.Sample]
    do throws(PrometheusQuery.Failure) {
        samples = try PrometheusQuery.samples(answer: answer)
    } catch {
        precondition(!error.description.isEmpty, "refused without a reason")
        // The same bytes as a selector or a token: refused or accepted, never a trap.
        let text = String(decoding: rest, as: UTF8.self)
        if PrometheusQuery.selectorProblem(text) == nil {
            precondition(!text.contains("\n") && text.first != "{", "a selector that could leave its braces")
        }
        if PrometheusQuery.tokenProblem(rest) == nil {
            precondition(!rest.contains(13) && !rest.contains(10), "a token that could start a header")
        }
        return 0
    }
    // The one answer in each of the three roles a reading gives it, and split by the mode.
    let split = Int(mode >> 1) % (samples.count + 1)
    let cases: [([PrometheusQuery.Sample], [PrometheusQuery.Sample], [PrometheusQuery.Sample])] = [
        (samples, [], samples), (Array(samples.prefix(split)), Array(samples.dropFirst(split)), samples),
        ([], [], samples), (Array(samples.prefix(1)), Array(samples.dropFirst(1).prefix(1)), Array(samples.dropFirst(2))),
    ]
    var readings: [VariantCounts] = []
    for (requests, errors, cumulative) in cases {
        do throws(PrometheusQuery.Failure) {
            let c = try PrometheusQuery.counts(requests: requests, errors: errors, cumulative: cumulative)
            precondition(c.errors <= c.requests, "more errors than requests")
            precondition(c.buckets.count == RolloutLatency.boundsSeconds.count + 1, "a bucket missing")
            let total = c.buckets.reduce(0.0) { $0 + Double($1) }
            precondition(total <= PrometheusQuery.largestCount, "buckets over the largest count")
            readings.append(c)
        } catch {
            precondition(error.invalidReading, "a bad value refused as something else: \(error.description)")
        }
    }
    // Judge every pair, both ways, as a step of a rollout would, and tick a rollout on them.
    for a in readings {
        for b in readings {
            let delta = RolloutReading(variant: a.since(b), baseline: b.since(a))
            _ = delta.variant.quantile(0.99, bounds: RolloutLatency.boundsSeconds)
            let gates = RolloutGates(maxErrorRate: 0.05, maxErrorRateRatio: 2, maxP99Ratio: 1.5, minRequests: Int(mode))
            for r in RolloutStatus.judge(gates, delta) { precondition(!r.line.isEmpty) }
            var status = RolloutStatus(plan: RolloutPlan(variant: "canary", baseline: "stable", steps: [10, 100], stepSeconds: 0,
                                                         gates: gates),
                                       origin: "config", now: 0, reading: RolloutReading(variant: b, baseline: a))
            _ = status.tick(now: 1, reading: RolloutReading(variant: b, baseline: a))
            _ = status.tick(now: 2, reading: RolloutReading(variant: a, baseline: b))
            precondition((0...100).contains(status.weight), "a weight that is not a percent")
        }
    }
    return 0
}
