// A strict reader of the Prometheus text format (0.0.4), for checking /metrics: every family
// has one HELP and one TYPE before its samples, its samples are together, names and labels are
// well formed (values unescaped), no series repeats, counters are not negative, and each
// histogram's buckets are cumulative, end with +Inf, and +Inf equals _count.
import Foundation

struct Exposition {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var name: String
        var type: String
        var help: String
        var samples: [Sample] = []
    }

    private(set) var families: [String: Family] = [:]
    private(set) var order: [String] = []

    init(_ text: String) throws {
        guard text.isEmpty || text.hasSuffix("\n") else { throw ExpositionError("the text does not end with a newline") }
        var current: String?
        var closed = Set<String>()
        var seen = Set<String>()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let line = String(raw)
            let where_ = "line \(n + 1): \(line)"
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, Self.isMetricName(String(parts[0])) else { throw ExpositionError("bad comment, \(where_)") }
                let name = String(parts[0])
                if line.hasPrefix("# HELP ") {
                    guard families[name] == nil, !closed.contains(name) else { throw ExpositionError("second HELP for \(name), \(where_)") }
                    if let c = current, c != name { closed.insert(c) }
                    current = name
                    families[name] = Family(name: name, type: "", help: String(parts[1]))
                    order.append(name)
                } else {
                    guard current == name, families[name]?.type == "" else { throw ExpositionError("TYPE without HELP just before, \(where_)") }
                    let type = String(parts[1])
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else {
                        throw ExpositionError("unknown type, \(where_)")
                    }
                    families[name]!.type = type
                }
                continue
            }
            guard !line.hasPrefix("#"), !line.isEmpty else { throw ExpositionError("unexpected line, \(where_)") }
            let sample = try Self.parseSample(line, where_)
            guard let family = current, let f = families[family], !f.type.isEmpty else {
                throw ExpositionError("sample outside a family, \(where_)")
            }
            let allowed = f.type == "histogram" ? [family + "_bucket", family + "_sum", family + "_count"] : [family]
            guard allowed.contains(sample.name) else { throw ExpositionError("sample \(sample.name) in family \(family), \(where_)") }
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            guard seen.insert(key).inserted else { throw ExpositionError("repeated series, \(where_)") }
            if f.type == "counter" || f.type == "histogram" {
                guard sample.value >= 0 else { throw ExpositionError("negative \(f.type), \(where_)") }
            }
            families[family]!.samples.append(sample)
        }
        for f in families.values {
            guard !f.type.isEmpty else { throw ExpositionError("\(f.name) has HELP but no TYPE") }
            if f.type == "histogram" { try Self.checkHistogram(f) }
        }
    }

    subscript(_ name: String) -> Family? { families[name] }

    /// The value of the sample `name` whose labels include `labels`; nil when none or several.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let family = families[name] ?? families[name.dropLastSuffix()]
        let matches = (family?.samples ?? families.values.flatMap(\.samples)).filter { s in
            s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value }
        }
        return matches.count == 1 ? matches[0].value : nil
    }

    /// Every sample called `name`.
    func samples(_ name: String) -> [Sample] { families.values.flatMap(\.samples).filter { $0.name == name } }

    static func isMetricName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || first == ":" || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || $0 == ":" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    static func isLabelName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    /// `name{a="x",b="y"} value`, label values with \\, \" and \n escapes only.
    static func parseSample(_ line: String, _ where_: String) throws -> Sample {
        let chars = Array(line.unicodeScalars)
        var i = 0
        var name = ""
        while i < chars.count && chars[i] != "{" && chars[i] != " " { name.unicodeScalars.append(chars[i]); i += 1 }
        guard isMetricName(name) else { throw ExpositionError("bad metric name, \(where_)") }
        var labels: [String: String] = [:]
        if i < chars.count && chars[i] == "{" {
            i += 1
            while true {
                guard i < chars.count else { throw ExpositionError("unterminated labels, \(where_)") }
                if chars[i] == "}" { i += 1; break }
                var label = ""
                while i < chars.count && chars[i] != "=" { label.unicodeScalars.append(chars[i]); i += 1 }
                guard isLabelName(label), i + 1 < chars.count, chars[i + 1] == "\"" else { throw ExpositionError("bad label, \(where_)") }
                i += 2
                var value = ""
                while true {
                    guard i < chars.count else { throw ExpositionError("unterminated label value, \(where_)") }
                    let c = chars[i]
                    if c == "\"" { i += 1; break }
                    if c == "\n" { throw ExpositionError("raw newline in a label value, \(where_)") }
                    if c == "\\" {
                        guard i + 1 < chars.count else { throw ExpositionError("dangling escape, \(where_)") }
                        switch chars[i + 1] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw ExpositionError("bad escape \\\(chars[i + 1]), \(where_)")
                        }
                        i += 2
                        continue
                    }
                    value.unicodeScalars.append(c)
                    i += 1
                }
                guard labels[label] == nil else { throw ExpositionError("label \(label) twice, \(where_)") }
                labels[label] = value
                if i < chars.count && chars[i] == "," { i += 1 } else if i < chars.count && chars[i] != "}" {
                    throw ExpositionError("expected , or }, \(where_)")
                }
            }
        }
        guard i < chars.count, chars[i] == " " else { throw ExpositionError("no value, \(where_)") }
        let rest = String(String.UnicodeScalarView(chars[(i + 1)...]))
        let parts = rest.split(separator: " ")
        guard parts.count == 1 || parts.count == 2 else { throw ExpositionError("bad value, \(where_)") }
        let v = String(parts[0])
        let value: Double
        switch v {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let d = Double(v) else { throw ExpositionError("bad value \(v), \(where_)") }
            value = d
        }
        return Sample(name: name, labels: labels, value: value)
    }

    static func checkHistogram(_ f: Family) throws {
        var groups: [[String: String]: [Sample]] = [:]
        for s in f.samples {
            var key = s.labels
            key["le"] = nil
            groups[key, default: []].append(s)
        }
        for (labels, samples) in groups {
            let buckets = samples.filter { $0.name == f.name + "_bucket" }
            guard let count = samples.first(where: { $0.name == f.name + "_count" }),
                  samples.contains(where: { $0.name == f.name + "_sum" }) else {
                throw ExpositionError("\(f.name)\(labels): no _sum or _count")
            }
            guard buckets.allSatisfy({ $0.labels["le"] != nil }), let last = buckets.last, last.labels["le"] == "+Inf" else {
                throw ExpositionError("\(f.name)\(labels): buckets do not end with le=\"+Inf\"")
            }
            var previousBound = -Double.infinity
            var previousCount = 0.0
            for b in buckets {
                guard let bound = b.labels["le"] == "+Inf" ? .infinity : Double(b.labels["le"]!), bound > previousBound else {
                    throw ExpositionError("\(f.name)\(labels): bucket bounds not increasing at le=\(b.labels["le"]!)")
                }
                guard b.value >= previousCount else {
                    throw ExpositionError("\(f.name)\(labels): buckets not cumulative at le=\(b.labels["le"]!)")
                }
                previousBound = bound
                previousCount = b.value
            }
            guard last.value == count.value else {
                throw ExpositionError("\(f.name)\(labels): +Inf bucket \(last.value) != _count \(count.value)")
            }
        }
    }
}

struct ExpositionError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

private extension String {
    func dropLastSuffix() -> String {
        for suffix in ["_bucket", "_sum", "_count"] where hasSuffix(suffix) { return String(dropLast(suffix.count)) }
        return self
    }
}
