// OpenSSL's error queue turned into one readable reason, and the queue left empty (a stale
// entry would make the next connection's SSL_get_error lie).
internal import COpenSSL

public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// `what`, followed by what OpenSSL queued on this thread (which is then emptied).
    static func fromQueue(_ what: String) -> TLSError {
        let reasons = drainQueue()
        return TLSError(reasons.isEmpty ? what : "\(what): \(reasons)")
    }

    /// The queued reasons, most specific first, without OpenSSL's "error:0A000086:SSL routines:"
    /// prefix; empties the queue.
    static func drainQueue() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if parts.count >= 3 { continue }
            if let r = ERR_reason_error_string(code) {
                let text = String(cString: r)
                if !parts.contains(text) { parts.append(text) }
            } else {
                parts.append("error \(code)")
            }
        }
        return parts.joined(separator: "; ")
    }

    static func clearQueue() { ERR_clear_error() }
}
