// Typed reading of parsed config values by key path. Every type, range, missing-key or
// unknown-key problem is recorded with its file, line and key path, and reading goes on, so one
// pass reports every error at once.

/// Collects the errors and warnings of one load or build.
package final class Diagnostics {
    /// The config file, or nil when checking a `Config` edited at run time.
    let file: String?
    package private(set) var errors: [String] = []
    private(set) var warnings: [String] = []

    /// The files the config names and the proxy reads (certificates, keys, CA files, secrets),
    /// with where each is named: a reload reads them again.
    private(set) var files: [NamedFile] = []

    package init(file: String?) { self.file = file }

    func named(file name: String, _ path: ConfigPath, line: Int?) {
        guard !files.contains(where: { $0.path == name }) else { return }
        files.append(NamedFile(path: name, location: location(path, line)))
    }

    package func error(_ path: ConfigPath, line: Int?, _ reason: String) {
        errors.append(format(path, line, reason))
    }

    func warning(_ path: ConfigPath, line: Int?, _ reason: String) {
        warnings.append(format(path, line, reason))
    }

    /// `file:line: key.path: reason`, the shape editors and compilers use.
    private func format(_ path: ConfigPath, _ line: Int?, _ reason: String) -> String {
        let at = location(path, line)
        return at.isEmpty ? reason : "\(at): \(reason)"
    }

    /// `file:line: key.path` (as much of it as is known).
    private func location(_ path: ConfigPath, _ line: Int?) -> String {
        var prefix = ""
        if let file {
            prefix = line.map { "\(file):\($0)" } ?? file
        }
        if path.isRoot { return prefix }
        return prefix.isEmpty ? path.description : "\(prefix): \(path)"
    }
}

/// A key path like `routes[1].split[0].upstream`.
package struct ConfigPath: CustomStringConvertible, Sendable {
    package private(set) var description = ""

    package static let root = ConfigPath()

    var isRoot: Bool { description.isEmpty }

    /// Keys that are plain words read as `.key`; anything else (a name with a space or a dot)
    /// as `["key"]`, so the path stays unambiguous.
    package func key(_ key: String) -> ConfigPath {
        var next = self
        let plain = !key.isEmpty && key.utf8.allSatisfy { ConfigTokens.isNameByte($0) && $0 != UInt8(ascii: ".") }
        if plain {
            next.description += isRoot ? key : "." + key
        } else {
            next.description += "[\"\(key.replacing("\"", with: "\\\""))\"]"
        }
        return next
    }

    package func index(_ index: Int) -> ConfigPath {
        var next = self
        next.description += "[\(index)]"
        return next
    }
}

/// One value in the document, with where it is.
struct ConfigValue {
    let node: JSONNode
    let path: ConfigPath
    let diagnostics: Diagnostics

    var line: Int { node.line }
    var isNull: Bool { if case .null = node.value { return true } else { return false } }

    func error(_ reason: String) { diagnostics.error(path, line: line, reason) }
    func warning(_ reason: String) { diagnostics.warning(path, line: line, reason) }
    /// This value names a file the proxy reads (and reads again at a reload).
    func names(file name: String) { diagnostics.named(file: name, path, line: line) }

    private func expected(_ what: String) { error("expected \(what), got \(node.kindDescription)") }

    /// True for a list value (a key that takes a flag or a list asks first).
    var isArray: Bool {
        if case .array = node.value { return true }
        return false
    }

    func string() -> String? {
        if case .string(let text) = node.value { return text }
        expected("a string")
        return nil
    }

    func nonEmptyString() -> String? {
        guard let text = string() else { return nil }
        if text.isEmpty { error("must not be empty") }
        return text.isEmpty ? nil : text
    }

    func bool() -> Bool? {
        if case .bool(let flag) = node.value { return flag }
        expected("true or false")
        return nil
    }

    /// An integer in `range`; a fraction, an exponent or an out-of-range value is an error.
    func int(_ range: ClosedRange<Int>) -> Int? {
        guard case .number(let text) = node.value else {
            expected("an integer")
            return nil
        }
        guard let number = Int(text) else {
            if text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                error("expected an integer, got \(text)")
            } else {
                error("\(text) is out of range (\(Self.describe(range)))")
            }
            return nil
        }
        guard range.contains(number) else {
            error("must be \(Self.describe(range)), got \(number)")
            return nil
        }
        return number
    }

    /// Any number, integer or fraction.
    func number() -> Double? {
        guard case .number(let text) = node.value, let number = Double(text), number.isFinite else {
            expected("a number")
            return nil
        }
        return number
    }

    func array() -> [ConfigValue]? {
        guard case .array(let elements) = node.value else {
            expected("an array")
            return nil
        }
        return elements.enumerated().map { ConfigValue(node: $1, path: path.index($0), diagnostics: diagnostics) }
    }

    /// An object whose keys must all be in `keys`; unknown keys are reported here.
    func object(keys: [String]) -> ConfigObject? {
        guard case .object(let members) = node.value else {
            expected("an object")
            return nil
        }
        return ConfigObject(members: members, value: self, knownKeys: keys)
    }

    /// An object with free-form keys (names of upstreams, headers, cookies).
    func map() -> ConfigObject? {
        guard case .object(let members) = node.value else {
            expected("an object")
            return nil
        }
        return ConfigObject(members: members, value: self, knownKeys: nil)
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        if range.upperBound == Int.max { return "at least \(range.lowerBound)" }
        return "between \(range.lowerBound) and \(range.upperBound)"
    }
}

/// An object being read. Duplicate keys and, when the keys are fixed, unknown keys are reported
/// when it is opened; lookups never report, `required` does.
struct ConfigObject {
    let members: [JSONMember]
    let value: ConfigValue

    var path: ConfigPath { value.path }
    var line: Int { value.line }
    var diagnostics: Diagnostics { value.diagnostics }

    fileprivate init(members: [JSONMember], value: ConfigValue, knownKeys: [String]?) {
        self.value = value
        var firstLine: [String: Int] = [:]
        var unique: [JSONMember] = []
        for member in members {
            if let first = firstLine[member.key] {
                value.diagnostics.error(value.path.key(member.key), line: member.line,
                                        "duplicate key (first at line \(first))")
                continue
            }
            firstLine[member.key] = member.line
            if let knownKeys, !knownKeys.contains(member.key) {
                value.diagnostics.error(value.path.key(member.key), line: member.line,
                                        "unknown key" + ConfigTokens.suggestion(for: member.key, among: knownKeys))
                continue
            }
            unique.append(member)
        }
        self.members = unique
    }

    var keys: [String] { members.map(\.key) }

    func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    subscript(key: String) -> ConfigValue? {
        guard let member = members.first(where: { $0.key == key }) else { return nil }
        return ConfigValue(node: member.value, path: path.key(key), diagnostics: diagnostics)
    }

    /// The value at `key`, or an error naming the missing key.
    func required(_ key: String) -> ConfigValue? {
        if let value = self[key] { return value }
        diagnostics.error(path.key(key), line: line, "missing required key")
        return nil
    }

    /// Every member in file order, for free-form objects.
    var entries: [(key: String, value: ConfigValue)] {
        members.map { ($0.key, ConfigValue(node: $0.value, path: path.key($0.key), diagnostics: diagnostics)) }
    }

    func error(_ reason: String) { value.error(reason) }

    func int(_ key: String, default fallback: Int, _ range: ClosedRange<Int>) -> Int {
        self[key].map { $0.int(range) ?? fallback } ?? fallback
    }

    /// Reports when more than one of `keys` is present; returns how many are.
    @discardableResult
    func atMostOne(of keys: [String]) -> Int {
        let present = keys.filter(has)
        if present.count > 1 {
            error("has both \(present.map { "\"\($0)\"" }.joined(separator: " and ")); use one")
        }
        return present.count
    }
}
