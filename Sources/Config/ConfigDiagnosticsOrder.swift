// Problems in the order they appear in the file, as a reader goes through it: the parser checks
// section by section (listeners before upstreams before routes), not top to bottom.
extension Diagnostics {
    var errorsInFileOrder: [String] { Self.inFileOrder(errors, file: file) }
    var warningsInFileOrder: [String] { Self.inFileOrder(warnings, file: file) }

    /// Sorted by the line after "FILE:", stably; messages without a line keep their order after
    /// those with one.
    static func inFileOrder(_ messages: [String], file: String?) -> [String] {
        guard let file else { return messages }
        let prefix = file + ":"
        func line(_ message: String) -> Int {
            guard message.hasPrefix(prefix) else { return Int.max }
            return Int(message.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }) ?? Int.max
        }
        return messages.enumerated()
            .sorted { a, b in
                let la = line(a.element), lb = line(b.element)
                return la != lb ? la < lb : a.offset < b.offset
            }
            .map(\.element)
    }
}
