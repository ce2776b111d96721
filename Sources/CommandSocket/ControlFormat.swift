// Replies as people read them (`switchyard ctl` without --json): scalars as `key: value` lines,
// lists of rows as aligned tables, nested objects indented, errors first. Everything fits a
// terminal of `width` columns: long values wrap at spaces, and rows too wide for one line are
// shown as blocks, one `key: value` line per column.
import Runtime
public enum ControlFormat {
    /// Columns a line may take (a token longer than this, e.g. a path, stays whole).
    public static let width = 100

    public static func render(_ reply: ControlValue) -> String {
        var out: [String] = []
        if reply["ok"]?.bool == false {
            out.append("error: \(reply["error"]?.plainText ?? "(no message)")")
        }
        for member in reply.members where member.key != "ok" && member.key != "error" {
            render(member.key, member.value, indent: "", into: &out)
        }
        return out.joined(separator: "\n")
    }

    private static func render(_ key: String, _ value: ControlValue, indent: String, into out: inout [String]) {
        switch value {
        case .array(let items) where items.isEmpty:
            out.append("\(indent)\(key): (none)")
        case .array(let items) where items.allSatisfy({ if case .object = $0 { return true } else { return false } }):
            if !out.isEmpty { out.append("") }
            out.append("\(indent)\(key):")
            out.append(contentsOf: table(items, width: width - indent.count - 2).map { indent + "  " + $0 })
        case .array(let items):
            let texts = items.map(cell)
            if texts.contains(where: { $0.count > 40 }) {
                out.append("\(indent)\(key):")
                for t in texts { out.append(contentsOf: wrap(t, first: "\(indent)  - ", rest: "\(indent)    ")) }
            } else {
                out.append("\(indent)\(key): \(texts.joined(separator: ", "))")
            }
        case .object(let members):
            out.append("\(indent)\(key):")
            for m in members { render(m.key, m.value, indent: indent + "  ", into: &out) }
        default:
            out.append(contentsOf: wrap(cell(value), first: "\(indent)\(key): ", rest: "\(indent)    "))
        }
    }

    /// Rows of objects as an aligned table whose columns are every key, in first-seen order; when
    /// a row would not fit `width`, each row as a block of `key: value` lines, the first cell's
    /// flush and the others' indented under it (empty ones left out).
    static func table(_ rows: [ControlValue], width: Int = width) -> [String] {
        var columns: [String] = []
        for row in rows {
            for m in row.members where !columns.contains(m.key) { columns.append(m.key) }
        }
        let cells = rows.map { row in columns.map { row[$0].map(cell) ?? "" } }
        let widths = columns.indices.map { i in cells.reduce(columns[i].count) { max($0, $1[i].count) } }
        func line(_ texts: [String]) -> String {
            var s = ""
            for (i, t) in texts.enumerated() {
                s += i == texts.count - 1 ? t : t + String(repeating: " ", count: widths[i] - t.count + 2)
            }
            return s
        }
        let lines = [line(columns.map { $0.uppercased() })] + cells.map(line)
        guard lines.contains(where: { $0.count > width }) else { return lines }
        var blocks: [String] = []
        for row in cells {
            blocks += wrap(row[0], first: "\(columns[0]): ", rest: "    ", width: width)
            for (i, text) in row.enumerated().dropFirst() where !text.isEmpty {
                blocks += wrap(text, first: "  \(columns[i]): ", rest: "      ", width: width)
            }
        }
        return blocks
    }

    /// `text` after `first`, broken at spaces into lines of at most `width` columns, later
    /// lines after `rest`.
    static func wrap(_ text: String, first: String, rest: String, width: Int = width) -> [String] {
        var lines: [String] = []
        var current = first
        var empty = true
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if !empty && current.count + 1 + word.count > width {
                lines.append(current)
                current = rest + word
            } else {
                current += (empty ? "" : " ") + word
            }
            empty = false
        }
        lines.append(current)
        return lines
    }

    /// Longest run of characters without a space shown as it is in the text form.
    static let maxTokenCharacters = 200

    private static func cell(_ value: ControlValue) -> String {
        switch value {
        case .null: return "-"
        case .bool(let b): return b ? "yes" : "no"
        case .string(let s) where s.utf8.count > maxTokenCharacters && !s.contains(where: \.isWhitespace):
            // An encoded blob (a sketch, a key): for programs, which read --json.
            return "(\(s.utf8.count) characters: --json shows them)"
        case .string(let s): return s
        case .array(let items): return items.map(cell).joined(separator: ",")
        case .object(let members): return members.map { "\($0.key)=\(cell($0.value))" }.joined(separator: " ")
        default: return value.json
        }
    }
}
