// Options of a guarded change (`--bake`, `--revert-if-…`, `--min-requests`), taken out of a
// command's arguments before its handler sees them (ControlEngine.execute).
import Config
import Runtime

/// The options of a guarded change.
package struct GuardOptions: Sendable, Equatable {
    var bakeSeconds: Double
    /// Largest 5xx share (0...1) of a watched upstream or variant before the change reverts.
    var maxErrorRate: Double?
    /// Largest p99 in ms (histogram bucket bound) before the change reverts.
    var maxP99Ms: Double?
    /// Largest ratio of the p99 to its baseline's p99 (GuardBaseline) before the change reverts.
    var maxP99Ratio: Double?
    /// A reading decides nothing below this many responses since the bake started.
    var minRequests: UInt64 = 10
    /// The sample-ratio p-value below which an experiment on a route whose weights the change
    /// set reverts it (with the experiment's `minUnits` new units since the change).
    var maxSRM: Double?

    /// The largest --min-requests: more responses than a bake could ever see.
    static let maxMinRequests: UInt64 = 1_000_000_000

    static let words = ["--bake", "--revert-if-error-rate", "--revert-if-p99-ms", "--revert-if-p99-ratio", "--min-requests",
                        "--revert-if-srm"]
    package static let usage = "[--bake SECONDS --revert-if-error-rate R [--revert-if-p99-ms MS] [--revert-if-p99-ratio X] "
        + "[--revert-if-srm P] [--min-requests N]]"

    /// Takes the guard options (`--bake 30` or `--bake=30`) out of `args`; nil when there are none.
    package static func extract(_ args: [String], command: String) throws(ControlError) -> (args: [String], options: GuardOptions?) {
        var rest: [String] = []
        var values: [String: String] = [:]
        var i = 0
        while i < args.count {
            let a = args[i]
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            guard a.hasPrefix("--"), words.contains(parts[0]) else {
                rest.append(a)
                i += 1
                continue
            }
            let value: String
            if parts.count == 2 {
                value = parts[1]
            } else {
                guard i + 1 < args.count else { throw ControlError("\(command): \(a) needs a value") }
                value = args[i + 1]
                i += 1
            }
            if values[parts[0]] != nil { throw ControlError("\(command): \(parts[0]) is given twice") }
            values[parts[0]] = value
            i += 1
        }
        guard !values.isEmpty else { return (args, nil) }
        guard let bakeText = values["--bake"] else {
            throw ControlError("\(command): --revert-if-… needs --bake SECONDS (how long to watch)")
        }
        guard let bake = Double(bakeText), bake > 0, bake <= 86_400 else {
            throw ControlError("\(command): --bake must be a number of seconds above 0 and at most 86400, got \"\(bakeText)\"")
        }
        var options = GuardOptions(bakeSeconds: bake)
        if let text = values["--revert-if-error-rate"] {
            let number = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
            guard let rate = number, rate >= 0, rate < 1 else {
                throw ControlError("\(command): --revert-if-error-rate must be a share from 0 to below 1 (0.05 or 5%), got \"\(text)\"")
            }
            options.maxErrorRate = rate
        }
        if let text = values["--revert-if-p99-ms"] {
            guard let ms = Double(text), ms > 0, ms.isFinite else {
                throw ControlError("\(command): --revert-if-p99-ms must be a number of milliseconds above 0, got \"\(text)\"")
            }
            options.maxP99Ms = ms
        }
        if let text = values["--revert-if-p99-ratio"] {
            guard let ratio = Double(text), ratio > 0, ratio.isFinite else {
                throw ControlError("\(command): --revert-if-p99-ratio must be a number above 0 (1.5: half again the baseline's p99), got \"\(text)\"")
            }
            options.maxP99Ratio = ratio
        }
        if let text = values["--revert-if-srm"] {
            guard let p = Double(text), p > 0, p < 1 else {
                throw ControlError("\(command): --revert-if-srm must be a p-value between 0 and 1 (0.001), got \"\(text)\"")
            }
            options.maxSRM = p
        }
        if let text = values["--min-requests"] {
            // Bounded like a rollout's gates.minRequests: the count is shown and compared as an Int.
            guard let n = UInt64(text), (1...maxMinRequests).contains(n) else {
                throw ControlError("\(command): --min-requests must be a whole number from 1 to \(maxMinRequests), got \"\(text)\"")
            }
            options.minRequests = n
        }
        guard options.maxErrorRate != nil || options.maxP99Ms != nil || options.maxP99Ratio != nil || options.maxSRM != nil else {
            throw ControlError("\(command): --bake needs a limit to watch: --revert-if-error-rate R, --revert-if-p99-ms MS, "
                + "--revert-if-p99-ratio X and/or --revert-if-srm P")
        }
        return (rest, options)
    }

    package var value: ControlValue {
        var v: ControlValue = ["bakeSeconds": .double(bakeSeconds), "minRequests": .int(Int(clamping: minRequests))]
        if let maxErrorRate { v.set("maxErrorRate", .double(maxErrorRate)) }
        if let maxP99Ms { v.set("maxP99Ms", .double(maxP99Ms)) }
        if let maxP99Ratio { v.set("maxP99Ratio", .double(maxP99Ratio)) }
        if let maxSRM { v.set("maxSRM", .double(maxSRM)) }
        return v
    }
}
