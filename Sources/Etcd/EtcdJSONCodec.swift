// JSON for etcd's gateway without Foundation's JSONSerialization, which pulls megabytes of
// library pages into every instance that speaks to etcd: answers are read by the config's own
// parser into plain Swift values (objects as [String: Any], arrays as [Any], strings as String,
// numbers as Number, booleans as Bool), and requests written by a small writer.
import Config

public enum JSONValues {
    /// What `null` reads as.
    public struct Null: Sendable {}

    /// A number, as its literal.
    public struct Number: Sendable {
        public let text: String
        public var double: Double? { Double(text).flatMap { $0.isFinite ? $0 : nil } }
    }

    /// The value `bytes` hold; nil when they are not JSON.
    public static func read(_ bytes: [UInt8]) -> Any? {
        guard let node = try? JSONParser.parse(bytes) else { return nil }
        return plain(node)
    }

    private static func plain(_ node: JSONNode) -> Any {
        switch node.value {
        case .null: return Null()
        case .bool(let b): return b
        case .number(let text): return Number(text: text)
        case .string(let s): return s
        case .array(let items): return items.map(plain)
        case .object(let members):
            var out: [String: Any] = [:]
            for m in members where out[m.key] == nil { out[m.key] = plain(m.value) }
            return out
        }
    }

    /// `value` as JSON text: String, Bool, integers, Double, [Any] and [String: Any] (keys in
    /// order, so the same value is always the same bytes); anything else is written as null.
    public static func write(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    private static func write(_ value: Any, into out: inout [UInt8]) {
        switch value {
        case let s as String: string(s, into: &out)
        case let b as Bool: out += Array((b ? "true" : "false").utf8)
        case let n as Int: out += Array(String(n).utf8)
        case let n as Int64: out += Array(String(n).utf8)
        case let n as UInt64: out += Array(String(n).utf8)
        case let d as Double: out += Array((d.isFinite ? String(d) : "null").utf8)
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, item) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                string(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(o[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        default: out += Array("null".utf8)
        }
    }

    private static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out += [92, 34]
            case 92: out += [92, 92]
            case 10: out += [92, UInt8(ascii: "n")]
            case 13: out += [92, UInt8(ascii: "r")]
            case 9: out += [92, UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [92, UInt8(ascii: "u"), 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A whole number written as a JSON number or, unless `numberOnly`, a decimal string (etcd
    /// writes 64-bit numbers as strings), within `range`; nil for anything else.
    public static func integer(_ value: Any?, in range: ClosedRange<Int64> = Int64.min...Int64.max, numberOnly: Bool = false) -> Int64? {
        let literal = (value as? Number)?.text ?? (numberOnly ? nil : value as? String)
        guard let text = literal, !text.isEmpty, text.utf8.count <= 20,
              text.utf8.enumerated().allSatisfy({ $0.element >= 48 && $0.element <= 57 || ($0.offset == 0 && $0.element == 45 && text.utf8.count > 1) }),
              let n = Int64(text), range.contains(n) else { return nil }
        return n
    }
}

/// Base64 (RFC 4648, with padding), as etcd's gateway writes keys and values.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        if i < bytes.count {
            let n = UInt32(bytes[i]) << 16 | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) << 8 : 0)
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)]]
            out += i + 1 < bytes.count ? [alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `text` encodes; nil when it is not base64 (wrong length, a stray character,
    /// padding in the middle).
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var i = 0
        while i < chars.count {
            let last = i + 4 == chars.count
            let pad = last ? (chars[i + 3] == UInt8(ascii: "=") ? (chars[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var n: UInt32 = 0
            for j in 0..<4 {
                let c = chars[i + j]
                if j >= 4 - pad {
                    n <<= 6
                    continue
                }
                let v = values[Int(c)]
                guard v != 0xFF else { return nil }
                n = n << 6 | UInt32(v)
            }
            out.append(UInt8(n >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(n & 0xFF)) }
            i += 4
        }
        return out
    }
}
