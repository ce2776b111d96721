// What Switchyard's HTTP/1 parsers answer: a result, an error carrying the status to send, and the
// limits that bound how much a peer can make the proxy buffer.

public struct HTTPParseError: Error, Sendable, Equatable {
    /// 400, 414, 417, 431, 501 or 505 for requests (413 is the proxy's, for body limits);
    /// 502 for responses.
    public var status: Int
    /// Short human text, e.g. "invalid Content-Length".
    public var reason: StaticString
    /// The message's framing is in doubt, so nothing more can be read from the connection: close it
    /// after answering. When false the head was complete and sound, `headLength` and `framing` are
    /// valid, and the connection may be kept once the body (if any) has been skipped.
    public var mustClose: Bool
    /// The message went over a size limit (head bytes, header count) rather than breaking a
    /// rule: for a response, the answer's fault and not a sign that the peer is failing.
    public var overLimit: Bool

    @inlinable
    public init(status: Int, reason: StaticString, mustClose: Bool, overLimit: Bool = false) {
        self.status = status
        self.reason = reason
        self.mustClose = mustClose
        self.overLimit = overLimit
    }

    public static func == (lhs: HTTPParseError, rhs: HTTPParseError) -> Bool {
        guard lhs.status == rhs.status, lhs.mustClose == rhs.mustClose else { return false }
        return lhs.reason.withUTF8Buffer { a in
            rhs.reason.withUTF8Buffer { b in a.elementsEqual(b) }
        }
    }
}

public enum ParseStatus: Sendable, Equatable {
    /// More bytes are needed; call again with the longer buffer.
    case incomplete
    /// The head is parsed; `headLength` says how many bytes it used.
    case complete
    case failed(HTTPParseError)
}

public struct HTTPLimits: Sendable {
    /// A head not complete within this many bytes is refused with 431.
    public var maxHeadBytes: Int
    /// More header fields than this is refused with 431.
    public var maxHeaders: Int
    /// A request-target longer than this is refused with 414, as soon as it is seen.
    public var maxURIBytes: Int

    public init(maxHeadBytes: Int = 16384, maxHeaders: Int = 100, maxURIBytes: Int = 8192) {
        // Offsets are stored as Int32.
        self.maxHeadBytes = max(0, min(maxHeadBytes, Int(Int32.max)))
        self.maxHeaders = max(0, maxHeaders)
        self.maxURIBytes = max(0, maxURIBytes)
    }
}

extension HTTPParseError {
    /// Request errors found in bytes that decide where messages start and end.
    @inline(__always)
    static func fatal(_ reason: StaticString, _ status: Int = 400) -> HTTPParseError {
        HTTPParseError(status: status, reason: reason, mustClose: true)
    }

    /// Request errors in a head whose framing is sound.
    @inline(__always)
    static func recoverable(_ reason: StaticString, _ status: Int = 400) -> HTTPParseError {
        HTTPParseError(status: status, reason: reason, mustClose: false)
    }
}
