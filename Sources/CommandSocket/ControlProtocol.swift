// The control socket's wire format: one command per line in (at most 64 KiB, LF or CRLF), one
// JSON object per line out. Framing and splitting a line into words live here.
import Runtime

public enum ControlProtocol {
    /// Longer lines are answered with an error and skipped up to their end.
    public static let maxLineBytes = 65_536

    /// The words of a command line: separated by blanks; `"..."` or `'...'` keeps blanks inside
    /// one word.
    public static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            switch c {
            case " ", "\t":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            case "\"", "'":
                quote = c
                inWord = true
            default:
                current.append(c)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// The reply line for `value` (with its newline).
    public static func line(_ value: ControlValue) -> [UInt8] {
        var bytes = Array(value.json.utf8)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    public static func failure(_ message: String, details: ControlValue = [:]) -> ControlValue {
        (["ok": false, "error": .string(message)] as ControlValue).merging(details)
    }
}

/// Splits a byte stream into lines. A line over the limit is reported once (with how long it
/// got before its end) and its bytes are dropped as they come.
public struct LineFramer: Sendable {
    public enum Item: Sendable, Equatable {
        case line(String)
        case tooLong(bytes: Int)
    }

    private var buffer: [UInt8] = []
    private var discarded = 0
    private var discarding = false
    public let limit: Int

    public init(limit: Int = ControlProtocol.maxLineBytes) { self.limit = limit }

    /// Whether bytes of an unfinished line are buffered.
    public var hasPartialLine: Bool { !buffer.isEmpty || discarding }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Item] {
        var items: [Item] = []
        var start = 0
        for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "\n") {
            take(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            items.append(endLine())
            start = i + 1
        }
        take(UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count]))
        return items
    }

    public mutating func feed(_ bytes: [UInt8]) -> [Item] {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// At end of input: the unterminated last line, if any.
    public mutating func finish() -> Item? {
        guard hasPartialLine else { return nil }
        return endLine()
    }

    private mutating func take(_ part: UnsafeRawBufferPointer) {
        if discarding {
            discarded += part.count
            return
        }
        if buffer.count + part.count > limit {
            discarding = true
            discarded = buffer.count + part.count
            buffer.removeAll(keepingCapacity: false)
            return
        }
        buffer.append(contentsOf: part)
    }

    private mutating func endLine() -> Item {
        if discarding {
            let n = discarded
            discarding = false
            discarded = 0
            return .tooLong(bytes: n)
        }
        if buffer.last == UInt8(ascii: "\r") { buffer.removeLast() }
        let text = String(decoding: buffer, as: UTF8.self)
        buffer.removeAll(keepingCapacity: true)
        return .line(text)
    }
}
