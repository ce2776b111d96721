// Serializing heads on their way through: the request head sent upstream (hop-by-hop and
// steering headers removed, framing headers canonical, forwarding headers added, origin-form
// target with a Host that agrees, path rewritten) and the response head sent to the client.
import HTTP1
import Reactor
import Routing

/// A parsed request over the bytes it was parsed from, as the router sees it.
struct RequestView: RoutingRequest {
    let bytes: UnsafeRawBufferPointer
    let head: RequestHead

    var method: UnsafeRawBufferPointer { bytes.slice(Int(head.methodStart), Int(head.methodEnd)) }

    var path: UnsafeRawBufferPointer {
        let target = bytes.slice(Int(head.targetStart), Int(head.pathEnd))
        return originPath(target)
    }

    /// The host the request is for, with its port: an absolute-form target's authority, which
    /// replaces Host (RFC 9112 3.2.2), else the Host header.
    var hostValue: UnsafeRawBufferPointer {
        if head.hasAbsoluteTarget { return bytes.slice(Int(head.authorityStart), Int(head.authorityEnd)) }
        guard head.hostIndex >= 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return head.headers[Int(head.hostIndex)].value(in: bytes)
    }

    var host: UnsafeRawBufferPointer {
        let h = hostValue
        guard h.count > 0 else { return h }
        // Drop ":port"; an IPv6 literal keeps its brackets.
        var i = h.count - 1
        while i > 0 {
            let b = h[i]
            if b == UInt8(ascii: ":") { return h.slice(0, i) }
            if b < UInt8(ascii: "0") || b > UInt8(ascii: "9") { break }
            i -= 1
        }
        return h
    }

    func forEachHeader(_ lowercasedName: Bytes, _ body: (UnsafeRawBufferPointer) -> Bool) {
        lowercasedName.withUnsafeBytes { name in
            for f in head.headers where Int(f.nameEnd - f.nameStart) == name.count {
                if asciiCaseInsensitiveEquals(f.name(in: bytes), name) {
                    if !body(f.value(in: bytes)) { return }
                }
            }
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func slice(_ from: Int, _ to: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress.map { $0 + from }, count: to - from)
    }
}

/// The origin-form path of a target: absolute-form "http://host/p" gives "/p" ("/" when empty).
@inline(__always)
func originPath(_ target: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    guard target.count > 0, target[0] != UInt8(ascii: "/") else { return target }
    // absolute-form: skip scheme "://" authority
    var i = 0
    while i + 2 < target.count {
        if target[i] == UInt8(ascii: ":") && target[i + 1] == UInt8(ascii: "/") && target[i + 2] == UInt8(ascii: "/") {
            var j = i + 3
            while j < target.count && target[j] != UInt8(ascii: "/") { j += 1 }
            if j == target.count { return slashBytes }
            return target.slice(j, target.count)
        }
        i += 1
    }
    return target   // "*" (OPTIONS) and anything else passes as is
}

private let slashLiteral: StaticString = "/"
private let hostLiteral: StaticString = "Host"
private var hostName: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: hostLiteral.utf8Start, count: 4) }
private var slashBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: slashLiteral.utf8Start, count: 1) }

enum HeadWriter {
    /// Writes the request head to send upstream into `out`. `hostHeader`: the Host the
    /// upstream's pool asks for (`Snapshot.hostHeader`), sent instead of the client's, which
    /// still goes in X-Forwarded-Host; it wins over a mirror's `hostSuffix`. `setHeaders`: the
    /// fields the pool sets (`Snapshot.setHeaders`), sent instead of the client's of the same
    /// names, so a client can neither choose nor learn them.
    static func writeRequest(_ view: RequestView, snapshot: Snapshot, decision: Decision, clientIP: [UInt8],
                             clientAddress: ClientAddress, secure: Bool,
                             requestID: UInt64, shadow: Bool, hostSuffix: Bytes?, stripHeaders: [Bytes] = [],
                             trace: TraceContext = TraceContext(), hostHeader: UnsafeRawBufferPointer? = nil,
                             setHeaders: SetHeaderFields = .none, into out: inout ByteBuffer, pool: BufferPool) {
        let bytes = view.bytes
        let head = view.head
        out.reserve(Int(head.headLength) + 256 + clientIP.count, pool: pool)
        out.append(view.method, pool: pool)
        out.append(" ", pool: pool)
        let path = view.path
        // Room for the longest rewrite a config can hold; retried larger if it ever is not.
        var room = path.count + 256
        while true {
            out.reserve(room, pool: pool)
            if let n = snapshot.rewrite(path: path, for: decision,
                                        into: UnsafeMutableRawBufferPointer(start: out.writePointer, count: out.writableCount)) {
                out.writer += n
                break
            }
            room *= 4
        }
        out.append(bytes.slice(Int(head.pathEnd), Int(head.targetEnd)), pool: pool)   // the query
        out.append(head.version == .http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", pool: pool)

        let trustsForwarding = snapshot.trustsForwardingHeaders(from: clientAddress)
        var xffCount = 0
        var forwardedCount = 0
        var hasRequestID = false
        var framingWritten = false
        for f in head.headers {
            // A shadow copy leaves out the fields its mirror strips (credentials); the config
            // refuses names the proxy writes itself, so none of the cases below is skipped.
            if !stripHeaders.isEmpty && isStripped(f.name(in: bytes), stripHeaders) { continue }
            // The config refuses names the proxy writes itself here too.
            if !setHeaders.isEmpty && setHeaders.replaces(f.name(in: bytes)) { continue }
            switch f.kind {
            case .xForwardedFor:
                xffCount += 1
                continue
            case .forwarded:
                forwardedCount += 1
                continue
            case .xForwardedProto, .xForwardedHost:
                continue
            case .forwardedOther:
                // X-Real-IP, X-Forwarded-Port, X-Forwarded-Prefix: an untrusted client would
                // choose the address or path the upstream believes.
                if !trustsForwarding { continue }
            case .xSwitchyardShadow:
                // A client's own mark would make a primary request look like a shadow copy.
                continue
            case .contentLength, .transferEncoding:
                // One canonical line for the framing the proxy read (RFC 9110 8.6, RFC 9112 6.1):
                // "Content-Length: 2, 2", "010", ",chunked" or a second empty Transfer-Encoding
                // line could be read another way upstream.
                if !framingWritten {
                    framingWritten = true
                    writeFraming(head.framing, into: &out, pool: pool)
                }
                continue
            case .xRequestId:
                hasRequestID = true
            case .traceparent, .tracestate:
                if trace.action != .pass { continue }
            case .host:
                writeHost(view, name: f.name(in: bytes), shadow: shadow, hostSuffix: hostSuffix, hostHeader: hostHeader,
                          into: &out, pool: pool)
                continue
            case .other:
                if f.hopByHop || snapshot.isSteeringHeader(f.name(in: bytes)) { continue }
            default:
                if f.hopByHop { continue }
            }
            out.append(bytes.slice(Int(f.nameStart), Int(f.valueEnd)), pool: pool)
            out.append("\r\n", pool: pool)
        }
        if head.hostIndex < 0 && (head.hasAbsoluteTarget || hostHeader != nil) {
            writeHost(view, name: hostName, shadow: shadow, hostSuffix: hostSuffix, hostHeader: hostHeader, into: &out, pool: pool)
        }
        out.reserve(2 * clientIP.count + 240, pool: pool)
        out.append("X-Forwarded-For: ", pool: pool)
        if xffCount > 0 && trustsForwarding {
            // Several X-Forwarded-For headers join into one list, client appended last.
            for f in head.headers where f.kind == .xForwardedFor {
                out.append(f.value(in: bytes), pool: pool)
                out.append(", ", pool: pool)
            }
        }
        out.append(clientIP, pool: pool)
        if forwardedCount > 0 {
            // Like X-Forwarded-For: a trusted client's list gets the proxy's element appended, an
            // untrusted client's is replaced by it (RFC 7239).
            out.append("\r\nForwarded: ", pool: pool)
            if trustsForwarding {
                for f in head.headers where f.kind == .forwarded {
                    out.append(f.value(in: bytes), pool: pool)
                    out.append(", ", pool: pool)
                }
            }
            appendForwardedElement(clientIP: clientIP, secure: secure, into: &out, pool: pool)
        }
        out.append(secure ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n", pool: pool)
        if head.hostIndex >= 0 || head.hasAbsoluteTarget {
            out.append("X-Forwarded-Host: ", pool: pool)
            out.append(view.hostValue, pool: pool)
            out.append("\r\n", pool: pool)
        }
        if !hasRequestID {
            out.append("X-Request-Id: ", pool: pool)
            appendHex(requestID, into: &out, pool: pool)
            out.append("\r\n", pool: pool)
        }
        if decision.unit != 0 {
            // The experiment's unit, so the application can join its own events with the
            // exposure log (a keyed unit is a hash it cannot compute).
            out.append("X-Switchyard-Unit: ", pool: pool)
            appendHex(decision.unit, into: &out, pool: pool)
            out.append("\r\n", pool: pool)
        }
        if trace.action == .replace { appendTraceparent(trace, into: &out, pool: pool) }
        if !setHeaders.isEmpty { setHeaders.forEachLine { out.append($0, pool: pool) } }
        if shadow { out.append("X-Switchyard-Shadow: 1\r\n", pool: pool) }
        if head.upgrade && !shadow {
            for f in head.headers where f.kind == .upgrade {
                out.append(bytes.slice(Int(f.nameStart), Int(f.valueEnd)), pool: pool)
                out.append("\r\n", pool: pool)
            }
            out.append("Connection: upgrade\r\n", pool: pool)
        } else if head.version == .http10 || shadow && head.upgrade {
            out.append("Connection: close\r\n", pool: pool)
        }
        if head.teTrailers && !(head.upgrade && !shadow) {
            // The one TE value that says something to the origin: the client takes trailers
            // (gRPC-style clients). TE is hop-by-hop, so it is named in Connection too.
            out.append("TE: trailers\r\nConnection: TE\r\n", pool: pool)
        }
        out.append("\r\n", pool: pool)
    }

    /// Whether `name` is one of `stripHeaders` (lowercased), compared case-insensitively.
    private static func isStripped(_ name: UnsafeRawBufferPointer, _ stripHeaders: [Bytes]) -> Bool {
        for s in stripHeaders where s.count == name.count {
            if s.withUnsafeBytes({ asciiCaseInsensitiveEquals(name, $0) }) { return true }
        }
        return false
    }

    /// `Host: <host the request is for>`, with the mirror's suffix after the host part; or the
    /// upstream's own `hostHeader`.
    private static func writeHost(_ view: RequestView, name: UnsafeRawBufferPointer, shadow: Bool, hostSuffix: Bytes?,
                                  hostHeader: UnsafeRawBufferPointer?, into out: inout ByteBuffer, pool: BufferPool) {
        let h = hostHeader ?? view.hostValue
        out.reserve(name.count + h.count + (hostSuffix?.count ?? 0) + 4, pool: pool)
        out.append(name, pool: pool)
        out.append(": ", pool: pool)
        if shadow, let hostSuffix, hostHeader == nil {
            let hostOnly = view.host
            out.append(hostOnly, pool: pool)
            out.append(hostSuffix, pool: pool)
            out.append(h.slice(hostOnly.count, h.count), pool: pool)
        } else {
            out.append(h, pool: pool)
        }
        out.append("\r\n", pool: pool)
    }

    private static func writeFraming(_ framing: BodyFraming, into out: inout ByteBuffer, pool: BufferPool) {
        switch framing {
        case .chunked:
            out.append("Transfer-Encoding: chunked\r\n", pool: pool)
        case .contentLength(let n):
            out.append("Content-Length: ", pool: pool)
            out.appendDecimal(Int(n), pool: pool)
            out.append("\r\n", pool: pool)
        case .none, .untilClose:
            // A Content-Length of 0 parses as no body.
            out.append("Content-Length: 0\r\n", pool: pool)
        }
    }

    /// `for=203.0.113.7;proto=http`; an IPv6 node is quoted in brackets (RFC 7239 6).
    private static func appendForwardedElement(clientIP: [UInt8], secure: Bool, into out: inout ByteBuffer, pool: BufferPool) {
        if clientIP.contains(UInt8(ascii: ":")) {
            out.append("for=\"[", pool: pool)
            out.append(clientIP, pool: pool)
            out.append("]\"", pool: pool)
        } else if clientIP.isEmpty {
            out.append("for=unknown", pool: pool)
        } else {
            out.append("for=", pool: pool)
            out.append(clientIP, pool: pool)
        }
        out.append(secure ? ";proto=https" : ";proto=http", pool: pool)
    }

    /// Writes a response head for the client: status line, the upstream's end-to-end headers,
    /// the variant header and sticky cookie, and our connection decision.
    static func writeResponse(_ bytes: UnsafeRawBufferPointer, _ head: ResponseHead, keepAlive: Bool,
                              clientHTTP10: Bool, variantLine: UnsafeRawBufferPointer,
                              snapshot: Snapshot?, decision: Decision, secure: Bool,
                              into out: inout ByteBuffer, pool: BufferPool) {
        out.reserve(Int(head.headLength) + 160 + Sticky.maxSetCookieBytes + variantLine.count, pool: pool)
        out.append("HTTP/1.1 ", pool: pool)
        out.appendDecimal(head.status, pool: pool)
        out.append(" ", pool: pool)
        out.append(bytes.slice(Int(head.reasonStart), Int(head.reasonEnd)), pool: pool)
        out.append("\r\n", pool: pool)
        for f in head.headers {
            if f.hopByHop || f.kind == .contentLength || f.kind == .transferEncoding { continue }
            out.append(bytes.slice(Int(f.nameStart), Int(f.valueEnd)), pool: pool)
            out.append("\r\n", pool: pool)
        }
        writeResponseFraming(bytes, head, clientHTTP10: clientHTTP10, into: &out, pool: pool)
        out.append(variantLine, pool: pool)
        if decision.setCookie, let snapshot {
            out.reserve(Sticky.maxSetCookieBytes + 64, pool: pool)
            out.writer += snapshot.writeSetCookie(for: decision, secure: secure,
                                                  into: UnsafeMutableRawBufferPointer(start: out.writePointer, count: out.writableCount))
        }
        if head.status == 101 {
            for f in head.headers where f.kind == .upgrade {
                out.append(bytes.slice(Int(f.nameStart), Int(f.valueEnd)), pool: pool)
                out.append("\r\n", pool: pool)
            }
            out.append("Connection: upgrade\r\n", pool: pool)
        } else if !keepAlive {
            out.append("Connection: close\r\n", pool: pool)
        } else if clientHTTP10 {
            out.append("Connection: keep-alive\r\n", pool: pool)
        }
        out.append("\r\n", pool: pool)
    }

    /// One canonical framing line for the framing the proxy read, as for requests (RFC 9110
    /// 8.6, 6.4.1; RFC 9112 6.1): "Content-Length: 010", the same length twice or
    /// "Transfer-Encoding: ,chunked" could be read another way by the client. A response to HEAD
    /// or a 304 keeps the length it declared (it describes the representation); a 204 and a
    /// 1xx carry none (RFC 9110 8.6: a server must not send one). An HTTP/1.0 client gets no
    /// Transfer-Encoding (RFC 9112 6.1): a chunked body reaches it as the payload alone, which
    /// the close delimits.
    private static func writeResponseFraming(_ bytes: UnsafeRawBufferPointer, _ head: ResponseHead, clientHTTP10: Bool,
                                             into out: inout ByteBuffer, pool: BufferPool) {
        if head.status < 200 || head.status == 204 { return }
        var codings = false
        switch head.framing {
        case .contentLength(let n):
            out.append("Content-Length: ", pool: pool)
            out.appendDecimal(Int(n), pool: pool)
            out.append("\r\n", pool: pool)
            return
        case .chunked:
            codings = true
        case .none:
            // HEAD or 304: what the upstream declared, canonical.
            if head.declaredLength >= 0 {
                out.append("Content-Length: ", pool: pool)
                out.appendDecimal(Int(head.declaredLength), pool: pool)
                out.append("\r\n", pool: pool)
                return
            }
            codings = head.firstIndex(of: .transferEncoding) != nil
        case .untilClose:
            return
        }
        guard codings && !clientHTTP10 else { return }
        out.reserve(64, pool: pool)
        out.append("Transfer-Encoding: ", pool: pool)
        var first = true
        head.forEachTransferCoding(in: bytes) { coding in
            if !first { out.append(", ", pool: pool) }
            first = false
            out.append(coding, pool: pool)
        }
        out.append("\r\n", pool: pool)
    }

    /// An interim (1xx) response passes through with its headers.
    static func writeInterim(_ bytes: UnsafeRawBufferPointer, _ head: ResponseHead, into out: inout ByteBuffer, pool: BufferPool) {
        out.reserve(Int(head.headLength) + 16, pool: pool)
        out.append("HTTP/1.1 ", pool: pool)
        out.appendDecimal(head.status, pool: pool)
        out.append(" ", pool: pool)
        out.append(bytes.slice(Int(head.reasonStart), Int(head.reasonEnd)), pool: pool)
        out.append("\r\n", pool: pool)
        for f in head.headers where !f.hopByHop {
            out.append(bytes.slice(Int(f.nameStart), Int(f.valueEnd)), pool: pool)
            out.append("\r\n", pool: pool)
        }
        out.append("\r\n", pool: pool)
    }

    /// `traceparent: 00-<trace id>-<parent id>-01` for a trace the proxy started (sampled: the
    /// proxy records it in the access log).
    private static func appendTraceparent(_ t: TraceContext, into out: inout ByteBuffer, pool: BufferPool) {
        out.reserve(72, pool: pool)
        out.append("traceparent: 00-", pool: pool)
        appendHex(t.traceHi, into: &out, pool: pool)
        appendHex(t.traceLo, into: &out, pool: pool)
        out.append("-", pool: pool)
        appendHex(t.parent, into: &out, pool: pool)
        out.append("-01\r\n", pool: pool)
    }

    /// A short text/plain answer generated by the proxy itself, naming the variant like a
    /// proxied answer does (`variantLine`, empty when the request was not routed to one).
    static func writeError(status: Int, detail: StaticString, close: Bool, extraHeaders: StaticString = "",
                           variantLine: UnsafeRawBufferPointer = .init(start: nil, count: 0),
                           dateLine: UnsafeRawBufferPointer = .init(start: nil, count: 0),
                           into out: inout ByteBuffer, pool: BufferPool) {
        let reason = HTTPStatus.reason(status)
        let bodyLength = 4 + reason.utf8CodeUnitCount + 2 + detail.utf8CodeUnitCount + 1
        out.reserve(160 + bodyLength + variantLine.count + dateLine.count, pool: pool)
        out.append("HTTP/1.1 ", pool: pool)
        out.appendDecimal(status, pool: pool)
        out.append(" ", pool: pool)
        out.append(reason, pool: pool)
        out.append("\r\nContent-Type: text/plain\r\nContent-Length: ", pool: pool)
        out.appendDecimal(bodyLength, pool: pool)
        out.append("\r\n", pool: pool)
        out.append(dateLine, pool: pool)
        if extraHeaders.utf8CodeUnitCount > 0 { out.append(extraHeaders, pool: pool) }
        out.append(variantLine, pool: pool)
        out.append(close ? "Connection: close\r\n\r\n" : "\r\n", pool: pool)
        out.appendDecimal(status, pool: pool)
        out.append(" ", pool: pool)
        out.append(reason, pool: pool)
        out.append(": ", pool: pool)
        out.append(detail, pool: pool)
        out.append("\n", pool: pool)
    }

    static func appendHex(_ v: UInt64, into out: inout ByteBuffer, pool: BufferPool) {
        out.reserve(16, pool: pool)
        let digits: StaticString = "0123456789abcdef"
        let p = out.writePointer
        var x = v
        for i in (0..<16).reversed() {
            p.storeBytes(of: digits.utf8Start[Int(x & 0xF)], toByteOffset: i, as: UInt8.self)
            x >>= 4
        }
        out.writer += 16
    }
}
