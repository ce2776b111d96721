// Just enough XML to read an STS answer: elements (namespace prefixes dropped), their
// attributes skipped, text with the predefined and numeric character references, CDATA,
// comments and the XML declaration. Strict and bounded: a DOCTYPE (and so any entity
// definition), a mismatched end tag, nesting deeper than 32 or anything after the root element
// is refused; nothing in the input can trap. Pure.

struct XMLElement: Sendable, Equatable {
    var name: String
    var children: [XMLElement] = []
    /// The element's own text, its children's left out.
    var text: String = ""

    /// The first child named `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// The element `path` names below this one, child by child.
    func descendant(_ path: String...) -> XMLElement? {
        var at: XMLElement? = self
        for name in path { at = at?.child(name) }
        return at
    }

    /// The root element of `bytes`; an input that is not well-formed is refused with the reason.
    static func parse(_ bytes: [UInt8]) throws(CredentialsError) -> XMLElement {
        var reader = XMLReader(bytes: bytes)
        return try reader.document()
    }
}

private struct XMLReader {
    let bytes: [UInt8]
    var at = 0
    static let maxDepth = 32
    /// No DTD, so no entity to expand (and no way to make a small answer a large one).
    static let declarationRefused = "a declaration (DOCTYPE or ENTITY) is not accepted"

    mutating func document() throws(CredentialsError) -> XMLElement {
        if starts("\u{FEFF}") { at += 3 }
        try skipMisc()
        guard starts("<") else { throw fail("no root element") }
        guard !starts("<!") else { throw fail(Self.declarationRefused) }
        let root = try element(depth: 0)
        try skipMisc()
        guard at == bytes.count else { throw fail("content after the root element") }
        return root
    }

    private func fail(_ reason: String) -> CredentialsError { CredentialsError("not well-formed XML at byte \(at): \(reason)") }

    private func starts(_ text: String) -> Bool {
        let t = Array(text.utf8)
        return bytes.count - at >= t.count && bytes[at..<(at + t.count)].elementsEqual(t)
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    private mutating func skipSpace() { while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 } }

    /// Moves past the next `end`; an input that never has it is refused.
    private mutating func skip(past end: String) throws(CredentialsError) {
        let e = Array(end.utf8)
        while at < bytes.count {
            if starts(end) { at += e.count; return }
            at += 1
        }
        throw fail("unterminated, no \"\(end)\"")
    }

    /// White space, comments and processing instructions (the XML declaration) around the root.
    private mutating func skipMisc() throws(CredentialsError) {
        while true {
            skipSpace()
            if starts("<?") { try skip(past: "?>") } else if starts("<!--") { try skip(past: "-->") } else { return }
        }
    }

    /// A name, its namespace prefix dropped.
    private mutating func name() throws(CredentialsError) -> String {
        let start = at
        while at < bytes.count, !Self.isSpace(bytes[at]), !"/>=<\"'&".utf8.contains(bytes[at]) { at += 1 }
        guard at > start else { throw fail("a name was expected") }
        let full = bytes[start..<at]
        let local = full.lastIndex(of: UInt8(ascii: ":")).map { full[($0 + 1)...] } ?? full
        guard !local.isEmpty else { throw fail("a name with an empty local part") }
        return String(decoding: local, as: UTF8.self)
    }

    private mutating func element(depth: Int) throws(CredentialsError) -> XMLElement {
        guard depth < Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth)") }
        at += 1   // "<"
        var element = XMLElement(name: try name())
        while true {   // attributes: read past, not kept
            skipSpace()
            if starts("/>") { at += 2; return element }
            if starts(">") { at += 1; break }
            _ = try name()
            skipSpace()
            guard starts("=") else { throw fail("an attribute without \"=\"") }
            at += 1
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") || bytes[at] == UInt8(ascii: "'") else {
                throw fail("an attribute value without quotes")
            }
            let quote = bytes[at]
            at += 1
            while at < bytes.count, bytes[at] != quote {
                guard bytes[at] != UInt8(ascii: "<") else { throw fail("\"<\" in an attribute value") }
                at += 1
            }
            guard at < bytes.count else { throw fail("unterminated attribute value") }
            at += 1
        }
        var text: [UInt8] = []
        while true {
            guard at < bytes.count else { throw fail("element \(element.name) is not closed") }
            if starts("</") {
                at += 2
                let end = try name()
                guard end == element.name else { throw fail("</\(end)> closes <\(element.name)>") }
                skipSpace()
                guard starts(">") else { throw fail("an end tag without \">\"") }
                at += 1
                element.text = String(decoding: text, as: UTF8.self)
                return element
            } else if starts("<!--") {
                try skip(past: "-->")
            } else if starts("<![CDATA[") {
                at += 9
                let start = at
                try skip(past: "]]>")
                text += bytes[start..<(at - 3)]
            } else if starts("<?") {
                try skip(past: "?>")
            } else if starts("<!") {
                throw fail(Self.declarationRefused)
            } else if starts("<") {
                element.children.append(try self.element(depth: depth + 1))
            } else if starts("&") {
                text += try reference()
            } else {
                text.append(bytes[at])
                at += 1
            }
        }
    }

    /// The bytes of a character reference: one of the five predefined, or `&#N;` / `&#xH;`.
    private mutating func reference() throws(CredentialsError) -> [UInt8] {
        let start = at + 1
        guard let semicolon = bytes[start..<min(bytes.count, start + 12)].firstIndex(of: UInt8(ascii: ";")) else {
            throw fail("an unterminated character reference")
        }
        let body = String(decoding: bytes[start..<semicolon], as: UTF8.self)
        at = semicolon + 1
        switch body {
        case "amp": return Array("&".utf8)
        case "lt": return Array("<".utf8)
        case "gt": return Array(">".utf8)
        case "quot": return Array("\"".utf8)
        case "apos": return Array("'".utf8)
        default:
            let hex = body.hasPrefix("#x")
            let digits = body.dropFirst(hex ? 2 : 1)
            guard body.hasPrefix("#"), !digits.isEmpty, digits.count <= 8,
                  let value = UInt32(digits, radix: hex ? 16 : 10), let scalar = Unicode.Scalar(value), value != 0 else {
                throw fail("an unknown reference &\(body);")
            }
            return Array(String(Character(scalar)).utf8)
        }
    }
}
