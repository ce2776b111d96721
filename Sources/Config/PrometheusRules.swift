// What the config checks of a Prometheus gate source before anything queries it: the label
// selector every query adds (label matchers only, nothing that could change the query), the
// bearer token's bytes, and the bounds on invalid readings. Rollouts/PrometheusQuery.swift
// queries with them.

public enum PrometheusRules {
    /// The label matchers every query adds unless the config names others: only the proxy's
    /// own series count, not any scraped pod that exports the same names.
    public static let defaultSelector = "job=\"switchyard\""
    /// Invalid readings in a row that pause a rollout unless the config says otherwise.
    public static let defaultMaxInvalidReadings = 3
    public static let maxInvalidReadingsRange = 1...1000

    /// Why `selector` is not a list of label matchers like `job="switchyard",env=~"prod|eu"`,
    /// or nil. It goes into the query as written, so nothing but matchers may pass: no braces
    /// or quotes outside a string, no unterminated string, no control bytes, no labels the
    /// query sets itself.
    public static func selectorProblem(_ selector: String) -> String? {
        let b = Array(selector.utf8)
        var i = 0
        var matchers = 0
        func isNameStart(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") || c == UInt8(ascii: "_") }
        func skipSpaces() { while i < b.count && b[i] == UInt8(ascii: " ") { i += 1 } }
        while true {
            skipSpaces()
            guard i < b.count, isNameStart(b[i]) else {
                return i < b.count ? "expected a label name at byte \(i + 1)" : "expected a label name after \"\(selector)\""
            }
            let nameStart = i
            while i < b.count && (isNameStart(b[i]) || (b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9"))) { i += 1 }
            let name = String(decoding: b[nameStart..<i], as: UTF8.self)
            if ["route", "variant", "code", "le", "__name__"].contains(name) {
                return "the label \"\(name)\" is set by the queries themselves"
            }
            skipSpaces()
            if i + 1 < b.count && (b[i] == UInt8(ascii: "!") || b[i] == UInt8(ascii: "=")) && (b[i + 1] == UInt8(ascii: "=") || b[i + 1] == UInt8(ascii: "~")) {
                guard !(b[i] == UInt8(ascii: "=") && b[i + 1] == UInt8(ascii: "=")) else { return "\"==\" is not a matcher (=, !=, =~, !~)" }
                i += 2
            } else if i < b.count && b[i] == UInt8(ascii: "=") {
                i += 1
            } else {
                return "expected =, !=, =~ or !~ after \(name)"
            }
            skipSpaces()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return "the value of \(name) must be a \"double-quoted\" string" }
            i += 1
            var closed = false
            while i < b.count {
                let c = b[i]
                if c < 0x20 || c == 0x7F { return "a control character in the value of \(name)" }
                if c == UInt8(ascii: "\"") {
                    closed = true
                    i += 1
                    break
                }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < b.count, [UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "n"), UInt8(ascii: "t")].contains(b[i + 1]) else {
                        return "only \\\\, \\\", \\n and \\t escapes may appear in the value of \(name)"
                    }
                    i += 2
                    continue
                }
                i += 1
            }
            guard closed else { return "the value of \(name) is not closed by a quote" }
            matchers += 1
            skipSpaces()
            if i == b.count { return matchers > 16 ? "at most 16 matchers" : nil }
            guard b[i] == UInt8(ascii: ",") else { return "expected a comma between matchers at byte \(i + 1)" }
            i += 1
        }
    }

    /// Why `token` (a bearer token file's bytes, trailing newlines removed) cannot go in a
    /// header, or nil: visible ASCII only, so no line break can start a header of its own.
    public static func tokenProblem(_ token: [UInt8]) -> String? {
        if token.isEmpty { return "empty" }
        if token.count > 16384 { return "over 16 KiB" }
        if let bad = token.first(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            return "holds the byte 0x\(String(bad, radix: 16)); only visible ASCII may go in a header"
        }
        return nil
    }
}
