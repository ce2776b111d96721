// Switchyard's upstream response head parser: the same field rules as requests, every failure a
// 502, and body framing decided with the request method and the status (RFC 9112 6.3).

public struct ResponseParser: Sendable {
    private let limits: HTTPLimits
    private var scanner = HeadScanner()

    public init(limits: HTTPLimits) {
        self.limits = limits
    }

    /// `bytes` always starts at the first byte of the head; after `.incomplete`, call again with the
    /// longer buffer. Resets itself after `.complete` and `.failed`. Every failure is a 502 that
    /// must close the upstream connection.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer, requestMethod: Method,
                               into head: inout ResponseHead) -> ParseStatus {
        if bytes.count < scanner.position { scanner = HeadScanner() }
        let tooLarge = HTTPParseError.upstream("response head too large")
        switch scanner.scan(bytes, maxHeadBytes: limits.maxHeadBytes, maxTargetBytes: nil,
                            skipLeadingEmptyLines: false, tooLarge: tooLarge) {
        case .incomplete:
            return .incomplete
        case .failed(let error):
            scanner = HeadScanner()
            return .failed(HTTPParseError(status: 502, reason: error.reason, mustClose: true, overLimit: error == tooLarge))
        case .complete(_, let end):
            scanner = HeadScanner()
            if let error = parseResponseHead(bytes, end: end, method: requestMethod, limits: limits, into: &head) {
                // 431 is the field-count limit the header parser shares with requests.
                return .failed(HTTPParseError(status: 502, reason: error.reason, mustClose: true, overLimit: error.status == 431))
            }
            return .complete
        }
    }

    public mutating func reset() {
        scanner = HeadScanner()
    }
}

extension HTTPParseError {
    @inline(__always)
    static func upstream(_ reason: StaticString) -> HTTPParseError {
        HTTPParseError(status: 502, reason: reason, mustClose: true)
    }
}

private func parseResponseHead(_ bytes: UnsafeRawBufferPointer, end: Int, method: Method, limits: HTTPLimits,
                               into head: inout ResponseHead) -> HTTPParseError? {
    head.headers.removeAll(keepingCapacity: true)
    head.headLength = Int32(truncatingIfNeeded: end)
    head.framing = .none
    head.keepAlive = false
    head.upgrade = false
    head.declaredLength = -1

    // Status line: HTTP-version SP 3DIGIT SP [reason]. The SP before an empty reason is often
    // missing in the wild and changes nothing about framing, so it is optional.
    switch parseVersion(bytes, 0) {
    case .http10: head.version = .http10
    case .http11: head.version = .http11
    case .unsupported: return .upstream("unsupported HTTP version")
    case .malformed: return .upstream("malformed status line")
    }
    guard bytes[8] == ASCII.space, isDigit(bytes[9]), isDigit(bytes[10]), isDigit(bytes[11]), bytes[9] != ASCII.zero
    else { return .upstream("malformed status line") }
    head.status = Int(bytes[9] &- ASCII.zero) * 100 + Int(bytes[10] &- ASCII.zero) * 10 + Int(bytes[11] &- ASCII.zero)
    var i = 12
    if bytes[i] == ASCII.space { i += 1 }
    head.reasonStart = Int32(i)
    while true {
        let b = bytes[i]
        if b == ASCII.lf {
            head.reasonEnd = Int32(truncatingIfNeeded: i)
            i += 1
            break
        }
        if b == ASCII.cr {
            guard bytes[i + 1] == ASCII.lf else { return .upstream("bare CR in head") }
            head.reasonEnd = Int32(truncatingIfNeeded: i)
            i += 2
            break
        }
        guard isFieldByte(b), i > 12 else { return .upstream("malformed status line") }
        i += 1
    }

    var summary = HeaderSummary()
    if let error = parseFieldLines(bytes, from: i, end: end, maxHeaders: limits.maxHeaders,
                                   headers: &head.headers, summary: &summary) {
        return error
    }

    // Other codings before chunked are relayed untouched with the body; only the framing matters.
    if let fault = summary.transferEncodingFault(http10: head.version == .http10) { return .upstream(fault) }

    let status = head.status
    head.declaredLength = summary.contentLength
    if status == 101 && !summary.hasUpgrade { return .upstream("101 without Upgrade") }
    if method == .head || status < 200 || status == 204 || status == 304 {
        head.framing = .none
    } else if method == .connect && status < 300 {
        head.framing = .none
        head.upgrade = true
    } else if summary.hasTransferEncoding {
        head.framing = .chunked
    } else if summary.contentLength > 0 {
        head.framing = .contentLength(summary.contentLength)
    } else if summary.contentLength < 0 {
        head.framing = .untilClose
    }
    if status == 101 { head.upgrade = true }
    head.keepAlive = !summary.connectionClose
        && (head.version == .http11 || summary.connectionKeepAlive)
        && head.framing != .untilClose
    return nil
}
