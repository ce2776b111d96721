// The values control-socket replies are made of: JSON whose object keys keep the order they were
// written in (replies read top-down), one line when encoded, and decoded back for `ctl`.
import Config
import Foundation

public indirect enum ControlValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ControlValue])
    case object([Member])

    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: ControlValue
        public init(_ key: String, _ value: ControlValue) {
            self.key = key
            self.value = value
        }
    }

    /// The member `key` of an object; nil otherwise.
    public subscript(key: String) -> ControlValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var members: [Member] {
        if case .object(let members) = self { return members } else { return [] }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [ControlValue]? { if case .array(let a) = self { return a } else { return nil } }

    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Adds (or replaces) a member of an object.
    public mutating func set(_ key: String, _ value: ControlValue) {
        guard case .object(var members) = self else { return }
        if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = value } else {
            members.append(Member(key, value))
        }
        self = .object(members)
    }

    /// An object with `other`'s members after this one's.
    public func merging(_ other: ControlValue) -> ControlValue {
        var result = self
        for m in other.members { result.set(m.key, m.value) }
        return result
    }
}

extension ControlValue: ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(dictionaryLiteral elements: (String, ControlValue)...) {
        self = .object(elements.map { Member($0.0, $0.1) })
    }
    public init(arrayLiteral elements: ControlValue...) { self = .array(elements) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }

    public init(_ text: String?) { self = text.map { .string($0) } ?? .null }
    public init(_ number: UInt64) { self = .int(Int(clamping: number)) }
    public init(_ strings: [String]) { self = .array(strings.map { .string($0) }) }
}

// MARK: - Encoding

extension ControlValue {
    /// Compact JSON on one line (newlines inside strings are escaped).
    public var json: String {
        var out = ""
        encode(into: &out)
        return out
    }

    private func encode(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += Self.format(d)
        case .string(let s): Self.quote(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.encode(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += "," }
                Self.quote(m.key, into: &out)
                out += ":"
                m.value.encode(into: &out)
            }
            out += "}"
        }
    }

    /// Whole numbers without a fraction (`5`, not `5.0`); at most three decimals otherwise
    /// (latencies in ms, percents).
    package static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded() && abs(d) < 1e15 { return String(Int(d)) }
        // Small values keep three significant digits (a p-value of 2e-9 is not 0).
        if abs(d) < 0.001 { return String(format: "%.3g", d).replacingOccurrences(of: "e-0", with: "e-") }
        // Three decimals at most; a value that rounds to a whole number loses its point too
        // (1.0004 is "1", never "1.", which is not JSON).
        var text = String(format: "%.3f", d)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

// MARK: - Decoding

extension ControlValue {
    /// Parses one reply line; nil when it is not JSON.
    public init?(json text: String) {
        guard let node = try? JSONParser.parse(Array(text.utf8)) else { return nil }
        self.init(node: node)
    }

    init(node: JSONNode) {
        switch node.value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let text): self = Int(text).map { .int($0) } ?? .double(Double(text) ?? 0)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(ControlValue.init(node:)))
        case .object(let members): self = .object(members.map { Member($0.key, ControlValue(node: $0.value)) })
        }
    }
}
