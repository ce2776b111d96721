// The config file syntax: JSON plus `//` and `/* */` comments and trailing commas. A small
// parser of our own (Foundation's JSONSerialization has no JSON5 mode on Linux) that keeps each
// value's line and the order of object keys, so every error can name its line.

package struct JSONNode {
    package enum Value {
        case null
        case bool(Bool)
        /// The literal as written; the reader decides whether it is an integer.
        case number(String)
        case string(String)
        case array([JSONNode])
        case object([JSONMember])
    }

    package var value: Value
    var line: Int

    /// How a type error names what it found.
    var kindDescription: String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number(let text): return "the number \(text)"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

package struct JSONMember {
    package var key: String
    var line: Int
    package var value: JSONNode
}

package struct JSONSyntaxError: Error {
    var line: Int
    var column: Int
    var reason: String
}

package struct JSONParser {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var depth = 0

    /// Nesting deeper than any real config; stops a hostile file from exhausting the stack.
    private static let maxDepth = 64

    package static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var parser = JSONParser(bytes: bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }  // UTF-8 byte order mark
        try parser.skipTrivia()
        guard parser.index < bytes.count else { throw parser.failure("the file is empty") }
        let root = try parser.value()
        try parser.skipTrivia()
        if parser.index < bytes.count { throw parser.failure("unexpected \(parser.describeCurrent()) after the end of the document") }
        return root
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func failure(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(line: line, column: index - lineStart + 1, reason: reason)
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func skipTrivia() throws(JSONSyntaxError) {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\n"):
                index += 1
                line += 1
                lineStart = index
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                let start = failure("unterminated /* comment")
                index += 2
                while true {
                    guard index + 1 < bytes.count else { throw start }
                    if bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/") {
                        index += 2
                        break
                    }
                    if bytes[index] == UInt8(ascii: "\n") {
                        line += 1
                        lineStart = index + 1
                    }
                    index += 1
                }
            default:
                return
            }
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONNode {
        guard index < bytes.count else { throw failure("expected a value, found end of file") }
        let startLine = line
        switch bytes[index] {
        case UInt8(ascii: "{"): return JSONNode(value: .object(try object()), line: startLine)
        case UInt8(ascii: "["): return JSONNode(value: .array(try array()), line: startLine)
        case UInt8(ascii: "\""): return JSONNode(value: .string(try string()), line: startLine)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONNode(value: .number(try number()), line: startLine)
        default:
            for (word, value) in [("true", JSONNode.Value.bool(true)), ("false", .bool(false)), ("null", .null)] {
                if bytes[index...].starts(with: word.utf8) {
                    index += word.utf8.count
                    return JSONNode(value: value, line: startLine)
                }
            }
            throw failure("expected a value, found \(describeCurrent())")
        }
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw failure("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func object() throws(JSONSyntaxError) -> [JSONMember] {
        try enter()
        defer { depth -= 1 }
        index += 1  // {
        var members: [JSONMember] = []
        while true {
            try skipTrivia()
            guard index < bytes.count else { throw failure("unterminated object: expected '}'") }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return members
            }
            guard bytes[index] == UInt8(ascii: "\"") else {
                throw failure("expected a key in double quotes or '}', found \(describeCurrent())")
            }
            let keyLine = line
            let key = try string()
            try skipTrivia()
            guard index < bytes.count && bytes[index] == UInt8(ascii: ":") else {
                throw failure("expected ':' after key \"\(key)\", found \(describeCurrent())")
            }
            index += 1
            try skipTrivia()
            members.append(JSONMember(key: key, line: keyLine, value: try value()))
            try skipTrivia()
            guard index < bytes.count else { throw failure("unterminated object: expected '}'") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): continue
            default: throw failure("expected ',' or '}' after the value of \"\(key)\", found \(describeCurrent())")
            }
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> [JSONNode] {
        try enter()
        defer { depth -= 1 }
        index += 1  // [
        var elements: [JSONNode] = []
        while true {
            try skipTrivia()
            guard index < bytes.count else { throw failure("unterminated array: expected ']'") }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return elements
            }
            elements.append(try value())
            try skipTrivia()
            guard index < bytes.count else { throw failure("unterminated array: expected ']'") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): continue
            default: throw failure("expected ',' or ']' in array, found \(describeCurrent())")
            }
        }
    }

    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = index
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index]) {
                parser.index += 1
            }
            return parser.index - from
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let intStart = index
        guard digits(&self) > 0 else { throw failure("expected digits in number") }
        if bytes[intStart] == UInt8(ascii: "0") && index - intStart > 1 {
            throw failure("numbers may not have leading zeros (write octal modes as strings, e.g. \"0600\")")
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw failure("expected digits after '.'") }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard digits(&self) > 0 else { throw failure("expected digits in exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        let opening = failure("unterminated string")
        index += 1  // "
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw opening }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else { throw opening.withReason("string is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw opening }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes[index...].starts(with: "\\u".utf8) else { throw failure("unpaired surrogate in \\u escape") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                    out.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    index -= 1
                    throw failure("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in string")
                }
            case 0..<0x20:
                throw failure(byte == 0x0A ? "unterminated string (newline inside quotes)" : "control character in string (escape it)")
            default:
                out.append(byte)
                index += 1
            }
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        // UInt32(_:radix:) alone would also accept a sign.
        guard index + 4 <= bytes.count,
              bytes[index..<index + 4].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
              let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
        else { throw failure("expected four hex digits after \\u") }
        index += 4
        return value
    }
}

extension JSONSyntaxError {
    fileprivate func withReason(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(line: line, column: column, reason: reason)
    }
}
