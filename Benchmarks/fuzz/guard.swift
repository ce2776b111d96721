// libFuzzer target: the options of a guarded change (`--bake`, `--revert-if-…`,
// `--min-requests`) taken out of a control line's words. A line is refused with a reason or
// gives options inside their documented bounds, whose JSON (the reply's `guard.limits`) is
// valid: never a trap on a number such as 18446744073709551615, NaN or inf.
import Runtime

// Runtime's error type (Runtime/RuntimeState.swift), the same shape, so that only the parser
// and the protocol need compiling here, not the runtime state over the data path.
// Public as there: GuardOptions.extract, which throws it, is a package function.
public struct ControlError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var details: ControlValue

    public init(_ message: String, details: ControlValue = [:]) {
        self.message = message
        self.details = details
    }

    public var description: String { message }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGuard(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let words = ControlProtocol.words(text)
    let result: (args: [String], options: GuardOptions?)
    do throws(ControlError) {
        result = try GuardOptions.extract(words, command: "set weights")
    } catch {
        precondition(error.message.hasPrefix("set weights: "), "refused without naming the command")
        return 0
    }
    precondition(result.args.count <= words.count, "arguments appeared")
    guard let o = result.options else {
        precondition(result.args == words, "arguments changed without options")
        return 0
    }
    precondition(o.bakeSeconds > 0 && o.bakeSeconds <= 86_400, "a bake out of bounds")
    precondition((1...GuardOptions.maxMinRequests).contains(o.minRequests), "--min-requests out of bounds")
    if let r = o.maxErrorRate { precondition(r >= 0 && r < 1, "an error rate out of bounds") }
    if let ms = o.maxP99Ms { precondition(ms > 0 && ms.isFinite, "a p99 limit out of bounds") }
    if let x = o.maxP99Ratio { precondition(x > 0 && x.isFinite, "a p99 ratio out of bounds") }
    // The limits as a reply shows them: one line of JSON that reads back.
    let line = ControlProtocol.line(["guard": ["limits": o.value]])
    guard let back = ControlValue(json: String(decoding: line.dropLast(), as: UTF8.self)) else {
        preconditionFailure("limits that are not JSON: \(String(decoding: line, as: UTF8.self))")
    }
    precondition(back["guard"]?["limits"]?["minRequests"]?.int == Int(exactly: o.minRequests), "minRequests changed in JSON")
    return 0
}
