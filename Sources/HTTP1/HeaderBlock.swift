// Parses the field lines of a complete head for both of Switchyard's parsers: validates each line,
// classifies the name, and gathers what framing and connection handling depend on.

/// What the field lines say about framing and the connection, before the request or response
/// rules turn it into decisions.
struct HeaderSummary {
    var contentLength: Int64 = -1
    var hasTransferEncoding = false
    var chunkedCount = 0
    var lastCodingIsChunked = false
    var hasOtherCoding = false
    var connectionClose = false
    var connectionKeepAlive = false
    var connectionUpgrade = false
    /// A Connection header names some other header, which must then be flagged hop-by-hop.
    var connectionNamesFields = false
    var hostCount = 0
    var hostIndex = -1
    var hostValid = true
    var hasUpgrade = false
    /// An Upgrade header offers h2c, which is never an upgrade the proxy takes part in.
    var upgradeH2C = false
    var expectContinue = false
    /// TE lists "trailers": the client accepts trailer fields (gRPC-style clients need the
    /// upstream to know).
    var teTrailers = false
    var expectOther = false

    /// Transfer-Encoding that requests and responses both refuse (RFC 9112 6.1, 6.3): framing
    /// another hop could read another way. Each parser answers with its own status.
    func transferEncodingFault(http10: Bool) -> StaticString? {
        guard hasTransferEncoding else { return nil }
        if http10 { return "Transfer-Encoding in an HTTP/1.0 message" }
        if contentLength >= 0 { return "both Transfer-Encoding and Content-Length" }
        if !lastCodingIsChunked { return "chunked is not the final transfer coding" }
        if chunkedCount > 1 { return "chunked applied more than once" }
        return nil
    }
}

/// Parses field lines from `start` through the empty line that ends the head at `end`. The head
/// scanner guarantees that every line up to `end` ends with LF.
func parseFieldLines(_ bytes: UnsafeRawBufferPointer, from start: Int, end: Int, maxHeaders: Int,
                     headers: inout [HeaderField], summary: inout HeaderSummary) -> HTTPParseError? {
    var i = start
    while true {
        let first = bytes[i]
        if first == ASCII.lf { break }
        if first == ASCII.cr {
            if bytes[i + 1] == ASCII.lf { break }
            return .fatal("bare CR in head")
        }
        if isOWS(first) { return .fatal("obsolete line folding") }

        let nameStart = i
        while isTokenByte(bytes[i]) { i += 1 }
        let nameEnd = i
        if bytes[i] != ASCII.colon {
            if nameEnd == nameStart { return .fatal("invalid header name") }
            if isOWS(bytes[i]) { return .fatal("whitespace before colon") }
            if bytes[i] == ASCII.lf || bytes[i] == ASCII.cr { return .fatal("header without colon") }
            return .fatal("invalid header name")
        }
        if nameEnd == nameStart { return .fatal("empty header name") }
        i += 1

        while isOWS(bytes[i]) { i += 1 }
        let valueStart = i
        var lineEnd: Int
        while true {
            i = skipPrintable(bytes, from: i, limit: end)
            var b = bytes[i]
            while b &- ASCII.space < 0x5F {
                i &+= 1
                b = bytes[i]
            }
            if b >= 0x80 || b == ASCII.ht {
                i += 1
            } else if b == ASCII.lf {
                lineEnd = i
                i += 1
                break
            } else if b == ASCII.cr {
                guard bytes[i + 1] == ASCII.lf else { return .fatal("bare CR in head") }
                lineEnd = i
                i += 2
                break
            } else if b == 0 {
                return .fatal("NUL in header value")
            } else {
                return .fatal("invalid character in header value")
            }
        }
        var valueEnd = lineEnd
        while valueEnd > valueStart && isOWS(bytes[valueEnd - 1]) { valueEnd -= 1 }

        if headers.count >= maxHeaders { return .fatal("too many header fields", 431) }
        let kind = classifyName(bytes, nameStart, nameEnd)
        let index = headers.count
        headers.append(HeaderField(nameStart: Int32(truncatingIfNeeded: nameStart),
                                   nameEnd: Int32(truncatingIfNeeded: nameEnd),
                                   valueStart: Int32(truncatingIfNeeded: valueStart),
                                   valueEnd: Int32(truncatingIfNeeded: valueEnd),
                                   kind: kind, hopByHop: kind.isHopByHop))
        if kind != .other,
           let error = summary.note(kind, index: index, bytes, valueStart, valueEnd) {
            return error
        }
    }
    if summary.connectionNamesFields { flagFieldsNamedByConnection(bytes, &headers) }
    return nil
}

extension HeaderKind {
    var isHopByHop: Bool {
        switch self {
        // Trailer is end-to-end (RFC 9110 6.6.2): it announces fields that pass with the body.
        case .connection, .keepAlive, .proxyConnection, .te, .upgrade: true
        default: false
        }
    }
}

/// Names are already known to be tokens, and in a token only letters change under `| 0x20` into
/// the lowercase letters and '-' of these literals, so OR-ing is an exact case fold here.
@inline(__always)
private func nameIs(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ literal: StaticString) -> Bool {
    let lit = literal.utf8Start
    var i = 0
    while i < literal.utf8CodeUnitCount {
        if bytes[start + i] | 0x20 != lit[i] { return false }
        i += 1
    }
    return true
}

func classifyName(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HeaderKind {
    switch end - start {
    case 2:
        if nameIs(bytes, start, "te") { return .te }
    case 4:
        if nameIs(bytes, start, "host") { return .host }
        if nameIs(bytes, start, "date") { return .date }
    case 6:
        if nameIs(bytes, start, "cookie") { return .cookie }
        if nameIs(bytes, start, "expect") { return .expect }
        if nameIs(bytes, start, "server") { return .server }
    case 7:
        if nameIs(bytes, start, "upgrade") { return .upgrade }
        if nameIs(bytes, start, "trailer") { return .trailer }
    case 9:
        if nameIs(bytes, start, "forwarded") { return .forwarded }
        if nameIs(bytes, start, "x-real-ip") { return .forwardedOther }
    case 10:
        if nameIs(bytes, start, "connection") { return .connection }
        if nameIs(bytes, start, "keep-alive") { return .keepAlive }
        if nameIs(bytes, start, "tracestate") { return .tracestate }
    case 11:
        if nameIs(bytes, start, "traceparent") { return .traceparent }
    case 12:
        if nameIs(bytes, start, "x-request-id") { return .xRequestId }
    case 14:
        if nameIs(bytes, start, "content-length") { return .contentLength }
    case 15:
        if nameIs(bytes, start, "x-forwarded-for") { return .xForwardedFor }
    case 16:
        if nameIs(bytes, start, "proxy-connection") { return .proxyConnection }
        if nameIs(bytes, start, "x-forwarded-host") { return .xForwardedHost }
        if nameIs(bytes, start, "x-forwarded-port") { return .forwardedOther }
    case 17:
        if nameIs(bytes, start, "transfer-encoding") { return .transferEncoding }
        if nameIs(bytes, start, "x-forwarded-proto") { return .xForwardedProto }
    case 18:
        if nameIs(bytes, start, "x-forwarded-prefix") { return .forwardedOther }
    case 19:
        if nameIs(bytes, start, "x-switchyard-shadow") { return .xSwitchyardShadow }
    default:
        break
    }
    return .other
}

extension HeaderSummary {
    /// Records one field that framing or connection handling depends on.
    mutating func note(_ kind: HeaderKind, index: Int, _ bytes: UnsafeRawBufferPointer,
                       _ start: Int, _ end: Int) -> HTTPParseError? {
        switch kind {
        case .host:
            hostCount += 1
            if hostIndex < 0 { hostIndex = index }
            if !isValidAuthority(bytes, start, end, allowEmpty: true, requirePort: false) { hostValid = false }
        case .contentLength:
            switch parseContentLength(bytes, start, end) {
            case .invalid:
                return .fatal("invalid Content-Length")
            case .conflicting:
                return .fatal("conflicting Content-Length")
            case .value(let n):
                if contentLength >= 0 && contentLength != n { return .fatal("conflicting Content-Length") }
                contentLength = n
            }
        case .transferEncoding:
            hasTransferEncoding = true
            var list = ListElements(bytes, start, end)
            while let (s, e) = list.next() {
                // Transfer codings with parameters are not used in practice; refusing them keeps
                // "is chunked last" a byte comparison.
                guard isToken(bytes, s, e) else { return .fatal("invalid Transfer-Encoding") }
                let chunked = equalsLowercased(bytes, s, e, "chunked")
                if chunked { chunkedCount += 1 } else { hasOtherCoding = true }
                lastCodingIsChunked = chunked
            }
        case .connection:
            var list = ListElements(bytes, start, end)
            while let (s, e) = list.next() {
                guard isToken(bytes, s, e) else { return .fatal("invalid Connection") }
                if equalsLowercased(bytes, s, e, "close") {
                    connectionClose = true
                } else if equalsLowercased(bytes, s, e, "keep-alive") {
                    connectionKeepAlive = true
                } else if equalsLowercased(bytes, s, e, "upgrade") {
                    connectionUpgrade = true
                } else {
                    connectionNamesFields = true
                }
            }
        case .upgrade:
            hasUpgrade = true
            // Which protocols are tunnelled is the route's choice (its `upgrades`), made once the
            // request is routed. h2c never is, whatever a config says: its tunnel would carry
            // requests past routing, header sanitising and the access log.
            var list = ListElements(bytes, start, end)
            while let (s, e) = list.next() {
                var nameEnd = s
                while nameEnd < e && bytes[nameEnd] != UInt8(ascii: "/") { nameEnd += 1 }
                if equalsLowercased(bytes, s, nameEnd, "h2c") { upgradeH2C = true }
            }
        case .te:
            var list = ListElements(bytes, start, end)
            while let (s, e) = list.next() {
                if equalsLowercased(bytes, s, e, "trailers") { teTrailers = true }
            }
        case .expect:
            var list = ListElements(bytes, start, end)
            while let (s, e) = list.next() {
                if equalsLowercased(bytes, s, e, "100-continue") { expectContinue = true } else { expectOther = true }
            }
        default:
            break
        }
        return nil
    }
}

/// Flags as hop-by-hop every field named in a Connection header (RFC 9110 7.6.1), except those
/// the proxy needs to frame and route the message: a client must not be able to strip them.
private func flagFieldsNamedByConnection(_ bytes: UnsafeRawBufferPointer, _ headers: inout [HeaderField]) {
    for c in headers.indices where headers[c].kind == .connection {
        var list = ListElements(bytes, Int(headers[c].valueStart), Int(headers[c].valueEnd))
        while let (s, e) = list.next() {
            if equalsLowercased(bytes, s, e, "close") || equalsLowercased(bytes, s, e, "keep-alive")
                || equalsLowercased(bytes, s, e, "upgrade") {
                continue
            }
            for h in headers.indices where !headers[h].hopByHop {
                switch headers[h].kind {
                case .host, .contentLength, .transferEncoding: continue
                default: break
                }
                if equalsIgnoringCase(bytes, Int(headers[h].nameStart), Int(headers[h].nameEnd), s, e) {
                    headers[h].hopByHop = true
                }
            }
        }
    }
}
