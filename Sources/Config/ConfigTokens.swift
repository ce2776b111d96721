// What counts as a valid name, header or cookie token and host pattern in the config, and the
// "did you mean" suggestions that go with unknown names.

package enum ConfigTokens {
    /// Letters, digits, '.', '_' and '-': the characters of upstream, route and variant names,
    /// which control commands take as words (`set weights ROUTE VARIANT=W`, `UPSTREAM/COLOR`).
    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isNameByte)
    }

    static let nameRule = "use letters, digits, '.', '_' and '-'"

    /// An HTTP token (RFC 9110 `tchar`): header names, methods and cookie names (RFC 6265 uses
    /// the same token for cookie names).
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    /// A cookie value as RFC 6265 allows it unquoted: no spaces, quotes, commas, semicolons or
    /// backslashes, no control characters.
    static func isCookieValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { byte in
            byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: ",")
                && byte != UInt8(ascii: ";") && byte != UInt8(ascii: "\\")
        }
    }

    /// A header value without control characters (tab allowed), safe to compare as bytes.
    static func isHeaderValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// A DNS-style host: labels of letters, digits, '-' and '_' separated by single dots.
    static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.utf8.allSatisfy { byte in
                isNameByte(byte) && byte != UInt8(ascii: ".")
            }
        }
    }

    /// A route's host pattern: `api.example.com`, `*.example.com`, or a bracketed IPv6 literal
    /// (as it appears in a Host header). No port.
    static func isHostPattern(_ text: String) -> Bool {
        if text.hasPrefix("*.") { return isHostName(String(text.dropFirst(2))) }
        if text.hasPrefix("[") && text.hasSuffix("]") && text.count > 2 {
            return text.dropFirst().dropLast().allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        return isHostName(text)
    }

    /// " (did you mean "x"?)" when one candidate is close to `name`, else "".
    static func suggestion(for name: String, among candidates: [String]) -> String {
        let lowered = name.lowercased()
        var best: (candidate: String, distance: Int)?
        for candidate in candidates where candidate != name {
            let distance = editDistance(lowered, candidate.lowercased())
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        // Allow about one typo per three characters, and always at least two.
        if let best, best.distance <= max(2, name.count / 3) { return " (did you mean \"\(best.candidate)\"?)" }
        // A shortened name ("path" for "pathPrefix").
        if name.count >= 3, let candidate = candidates.first(where: { $0.lowercased().hasPrefix(lowered) }) {
            return " (did you mean \"\(candidate)\"?)"
        }
        return ""
    }

    /// Levenshtein distance over Characters.
    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// " (did you mean "x"?)" when one candidate is close to `name` (about one typo per three
/// characters, at least two, or a prefix of a longer name), else "".
package func didYouMean(_ name: String, among candidates: [String], prefix: String = "") -> String {
    let lowered = name.lowercased()
    var best: (candidate: String, distance: Int)?
    for candidate in candidates where candidate != name {
        let distance = ConfigTokens.editDistance(lowered, candidate.lowercased())
        if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
    }
    if let best, best.distance <= max(2, name.count / 3) { return " (did you mean \"\(prefix)\(best.candidate)\"?)" }
    if name.count >= 3, let candidate = candidates.first(where: { $0.lowercased().hasPrefix(lowered) }) {
        return " (did you mean \"\(prefix)\(candidate)\"?)"
    }
    return ""
}
