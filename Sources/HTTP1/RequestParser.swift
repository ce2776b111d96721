// Switchyard's request head parser (RFC 9112): strict where a lenient reading would let a client
// frame a request differently from the upstream, and allocation-free once `headers` has grown.

public struct RequestParser: Sendable {
    private let limits: HTTPLimits
    private var scanner = HeadScanner()

    public init(limits: HTTPLimits) {
        self.limits = limits
    }

    /// `bytes` always starts at the first byte of the head; after `.incomplete`, call again with the
    /// longer buffer. The parser resets itself after `.complete` and `.failed`; on failure `head` is
    /// meaningful only when the error's `mustClose` is false.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer, into head: inout RequestHead) -> ParseStatus {
        if bytes.count < scanner.position { scanner = HeadScanner() }
        switch scanner.scan(bytes, maxHeadBytes: limits.maxHeadBytes, maxTargetBytes: limits.maxURIBytes,
                            skipLeadingEmptyLines: true,
                            tooLarge: .fatal("request head too large", 431)) {
        case .incomplete:
            return .incomplete
        case .failed(let error):
            scanner = HeadScanner()
            return .failed(error)
        case .complete(let start, let end):
            scanner = HeadScanner()
            if let error = parseRequestHead(bytes, start: start, end: end, limits: limits, into: &head) {
                return .failed(error)
            }
            return .complete
        }
    }

    /// Forgets scan state, e.g. before the next message when a partial head is abandoned.
    public mutating func reset() {
        scanner = HeadScanner()
    }
}

private func parseRequestHead(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int, limits: HTTPLimits,
                              into head: inout RequestHead) -> HTTPParseError? {
    head.headers.removeAll(keepingCapacity: true)
    head.headLength = Int32(truncatingIfNeeded: end)
    head.framing = .none
    head.keepAlive = false
    head.expectContinue = false
    head.teTrailers = false
    head.upgrade = false
    head.hostIndex = -1
    head.authorityStart = 0
    head.authorityEnd = 0

    // Request line: method SP request-target SP HTTP-version, each separated by exactly one space.
    var i = start
    while isTokenByte(bytes[i]) { i += 1 }
    let methodEnd = i
    guard methodEnd > start, bytes[i] == ASCII.space else { return .fatal("malformed request line") }
    head.methodStart = Int32(truncatingIfNeeded: start)
    head.methodEnd = Int32(truncatingIfNeeded: methodEnd)
    head.method = classifyMethod(bytes, start, methodEnd)

    i += 1
    let targetStart = i
    var query = -1
    while true {
        let b = bytes[i]
        if b &- 0x21 < 0x5E {   // VCHAR: RFC 3986 has no place for spaces, controls or raw UTF-8
            if b == ASCII.question && query < 0 { query = i }
            i += 1
        } else if b == ASCII.space {
            break
        } else {
            if b == ASCII.cr || b == ASCII.lf { return .fatal("malformed request line") }
            return .fatal("invalid character in request-target")
        }
    }
    let targetEnd = i
    guard targetEnd > targetStart else { return .fatal("malformed request line") }
    if targetEnd - targetStart > limits.maxURIBytes { return .fatal("request-target too long", 414) }
    head.targetStart = Int32(truncatingIfNeeded: targetStart)
    head.targetEnd = Int32(truncatingIfNeeded: targetEnd)
    head.pathEnd = Int32(truncatingIfNeeded: query >= 0 ? query : targetEnd)

    i += 1
    switch parseVersion(bytes, i) {
    case .http10: head.version = .http10
    case .http11: head.version = .http11
    case .unsupported: return .fatal("unsupported HTTP version", 505)
    case .malformed: return .fatal("malformed request line")
    }
    i += 8
    if bytes[i] == ASCII.cr { i += 1 }
    guard bytes[i] == ASCII.lf else { return .fatal("malformed request line") }
    i += 1

    var summary = HeaderSummary()
    if let error = parseFieldLines(bytes, from: i, end: end, maxHeaders: limits.maxHeaders,
                                   headers: &head.headers, summary: &summary) {
        return error
    }

    // Framing (RFC 9112 6.1, 6.3): anything a downstream server could read another way is refused.
    if let fault = summary.transferEncodingFault(http10: head.version == .http10) { return .fatal(fault) }
    if summary.hasTransferEncoding {
        if summary.hasOtherCoding { return .fatal("unsupported transfer coding", 501) }
        head.framing = .chunked
    } else if summary.contentLength > 0 {
        head.framing = .contentLength(summary.contentLength)
    }

    let http11 = head.version == .http11
    head.keepAlive = !summary.connectionClose && (http11 || summary.connectionKeepAlive)
    // An offer to switch protocols; the route it is sent on decides whether it is tunnelled or
    // forwarded as a plain request (its Upgrade header is hop-by-hop and dropped). An h2c offer
    // is a plain request on every route.
    head.upgrade = http11 && summary.connectionUpgrade && summary.hasUpgrade && !summary.upgradeH2C
    head.hostIndex = Int32(summary.hostIndex)
    // An HTTP/1.0 client cannot handle 100 Continue, so its expectation is ignored (RFC 9110 10.1.1).
    head.expectContinue = http11 && summary.expectContinue
    head.teTrailers = summary.teTrailers

    // The head is sound from here on: these errors leave the connection usable.
    if let error = checkTargetForm(bytes, targetStart, targetEnd, method: head.method, into: &head) { return error }
    if summary.hostCount == 0 && http11 { return .recoverable("missing Host") }
    if summary.hostCount > 1 { return .recoverable("repeated Host") }
    if !summary.hostValid { return .recoverable("invalid Host") }
    if http11 && summary.expectOther {
        head.expectContinue = false
        return .recoverable("unsupported expectation", 417)
    }
    return nil
}

enum VersionParse {
    case http10, http11, unsupported, malformed
}

/// Reads "HTTP/" DIGIT "." DIGIT at `i`; the caller checks what follows.
func parseVersion(_ bytes: UnsafeRawBufferPointer, _ i: Int) -> VersionParse {
    guard i + 8 <= bytes.count, equalsExactly(bytes, i, i + 5, "HTTP/"),
          isDigit(bytes[i + 5]), bytes[i + 6] == ASCII.dot, isDigit(bytes[i + 7]) else { return .malformed }
    // A multi-digit version is not "HTTP/x.y" at all.
    if i + 8 < bytes.count && isDigit(bytes[i + 8]) { return .malformed }
    guard bytes[i + 5] == 0x31 else { return .unsupported }
    switch bytes[i + 7] {
    case 0x30: return .http10
    case 0x31: return .http11
    default: return .unsupported
    }
}

/// Methods are case-sensitive (RFC 9110 9.1).
private func classifyMethod(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Method {
    switch end - start {
    case 3:
        if equalsExactly(bytes, start, end, "GET") { return .get }
        if equalsExactly(bytes, start, end, "PUT") { return .put }
    case 4:
        if equalsExactly(bytes, start, end, "POST") { return .post }
        if equalsExactly(bytes, start, end, "HEAD") { return .head }
    case 5:
        if equalsExactly(bytes, start, end, "PATCH") { return .patch }
        if equalsExactly(bytes, start, end, "TRACE") { return .trace }
    case 6:
        if equalsExactly(bytes, start, end, "DELETE") { return .delete }
    case 7:
        if equalsExactly(bytes, start, end, "OPTIONS") { return .options }
        if equalsExactly(bytes, start, end, "CONNECT") { return .connect }
    default:
        break
    }
    return .other
}

/// RFC 9112 3.2: origin-form for everything but CONNECT (authority-form) and server-wide OPTIONS
/// ("*"); absolute-form with an http(s) authority as sent to proxies.
private func checkTargetForm(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                             method: Method, into head: inout RequestHead) -> HTTPParseError? {
    if method == .connect {
        if isValidAuthority(bytes, start, end, allowEmpty: false, requirePort: true) { return nil }
        return .recoverable("CONNECT needs an authority-form target")
    }
    let first = bytes[start]
    if first == ASCII.slash { return nil }
    if first == ASCII.star && end - start == 1 {
        return method == .options ? nil : .recoverable("asterisk-form target without OPTIONS")
    }
    var authorityStart = -1
    if end - start >= 7 && equalsLowercased(bytes, start, start + 7, "http://") {
        authorityStart = start + 7
    } else if end - start >= 8 && equalsLowercased(bytes, start, start + 8, "https://") {
        authorityStart = start + 8
    }
    guard authorityStart >= 0 else { return .recoverable("invalid request-target") }
    var authorityEnd = authorityStart
    while authorityEnd < end {
        let b = bytes[authorityEnd]
        if b == ASCII.slash || b == ASCII.question || b == ASCII.hash { break }
        authorityEnd += 1
    }
    // Userinfo ("user@host") is refused along with every other non-host character (RFC 9110 4.2.4).
    guard isValidAuthority(bytes, authorityStart, authorityEnd, allowEmpty: false, requirePort: false) else {
        return .recoverable("invalid authority in request-target")
    }
    head.authorityStart = Int32(truncatingIfNeeded: authorityStart)
    head.authorityEnd = Int32(truncatingIfNeeded: authorityEnd)
    return nil
}
