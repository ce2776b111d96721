// The parsed shape of an HTTP/1 message head in Switchyard: offsets into the caller's bytes plus the
// decisions (framing, persistence, upgrade) the proxy acts on, so no String is built per request.

public enum HTTPVersion: UInt8, Sendable {
    case http10, http11
}

public enum Method: UInt8, Sendable {
    case get, head, post, put, delete, options, patch, connect, trace, other
}

/// Headers the proxy acts on, recognised case-insensitively while parsing so later stages compare
/// one byte instead of a name.
public enum HeaderKind: UInt8, Sendable {
    case other, host, contentLength, transferEncoding, connection, keepAlive, proxyConnection,
         te, trailer, upgrade, expect, cookie, xForwardedFor, xForwardedProto, xForwardedHost,
         xRequestId, date, server, forwarded,
         /// Switchyard's mark on shadow copies: only the proxy may set it.
         xSwitchyardShadow,
         /// W3C Trace Context.
         traceparent, tracestate,
         /// Forwarding fields the proxy does not write itself (X-Real-IP, X-Forwarded-Port,
         /// X-Forwarded-Prefix): believed only from trusted sources, like X-Forwarded-For.
         forwardedOther
}

public struct HeaderField: Sendable {
    /// Offsets from the start of the head (byte 0 of the buffer given to the parser).
    public var nameStart: Int32, nameEnd: Int32
    /// The value with leading and trailing OWS trimmed; may be empty.
    public var valueStart: Int32, valueEnd: Int32
    public var kind: HeaderKind
    /// True for hop-by-hop headers a proxy must not forward: Connection, Keep-Alive,
    /// Proxy-Connection, TE, Trailer, Upgrade, and every header named in a Connection header's
    /// token list (case-insensitive). Transfer-Encoding is not flagged (chunked bodies are
    /// forwarded unchanged with it), and neither are Host and Content-Length even when a
    /// Connection header names them: dropping them would change the framing or the target.
    public var hopByHop: Bool

    @inlinable
    public init(nameStart: Int32, nameEnd: Int32, valueStart: Int32, valueEnd: Int32,
                kind: HeaderKind, hopByHop: Bool) {
        self.nameStart = nameStart
        self.nameEnd = nameEnd
        self.valueStart = valueStart
        self.valueEnd = valueEnd
        self.kind = kind
        self.hopByHop = hopByHop
    }

    /// The name's bytes within `head`, the buffer this field was parsed from.
    @inlinable
    public func name(in head: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: head[Int(nameStart)..<Int(nameEnd)])
    }

    /// The trimmed value's bytes within `head`, the buffer this field was parsed from.
    @inlinable
    public func value(in head: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: head[Int(valueStart)..<Int(valueEnd)])
    }
}

public enum BodyFraming: Sendable, Equatable {
    /// No body. A Content-Length of 0 is reported as `.none` too.
    case none
    case contentLength(Int64)
    case chunked
    /// Responses only: the body ends when the upstream closes.
    case untilClose
}

public struct RequestHead: Sendable {
    public var method: Method
    /// The method token is bytes [methodStart, methodEnd). methodStart is 0 unless the request
    /// line was preceded by empty lines, which belong to the head but not to the method.
    public var methodStart: Int32
    public var methodEnd: Int32
    public var targetStart: Int32, targetEnd: Int32
    /// End of the path within the target (the first '?'); equals targetEnd when there is no query.
    public var pathEnd: Int32
    /// The authority of an absolute-form target ("http://a.example:8080/x" gives
    /// "a.example:8080"), which replaces Host (RFC 9112 3.2.2); both 0 for other forms.
    public var authorityStart: Int32, authorityEnd: Int32
    public var version: HTTPVersion
    /// Reused between requests: the parser empties it keeping its capacity.
    public var headers: [HeaderField]
    /// `.none`, `.contentLength` or `.chunked`.
    public var framing: BodyFraming
    /// HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
    public var keepAlive: Bool
    /// "Expect: 100-continue" on an HTTP/1.1 request.
    public var expectContinue: Bool
    /// TE lists "trailers" (forwarded as `TE: trailers`; every other TE coding is hop-by-hop).
    public var teTrailers: Bool = false
    /// Connection lists "upgrade" and an Upgrade header is present (HTTP/1.1 only), offering
    /// no h2c. Whether it is tunnelled is the route's policy (`Snapshot.allowsUpgrade`).
    public var upgrade: Bool
    /// Index into `headers` of the Host header, -1 if none.
    public var hostIndex: Int32
    /// Bytes of the head including leading empty lines and the final empty line.
    public var headLength: Int32

    public init() {
        method = .other
        methodStart = 0
        methodEnd = 0
        targetStart = 0
        targetEnd = 0
        pathEnd = 0
        authorityStart = 0
        authorityEnd = 0
        version = .http11
        headers = []
        framing = .none
        keepAlive = false
        expectContinue = false
        upgrade = false
        hostIndex = -1
        headLength = 0
    }
}

extension RequestHead {
    /// The target is in absolute-form: its authority, not Host, names the host.
    @inlinable
    public var hasAbsoluteTarget: Bool { authorityEnd > authorityStart }
}

public struct ResponseHead: Sendable {
    public var version: HTTPVersion
    public var status: Int
    public var reasonStart: Int32, reasonEnd: Int32
    /// Reused between responses: the parser empties it keeping its capacity.
    public var headers: [HeaderField]
    /// Decided with the request method (HEAD -> none) and the status (1xx, 204, 304 -> none).
    public var framing: BodyFraming
    /// False after "Connection: close", for HTTP/1.0 without keep-alive, and for `.untilClose`.
    public var keepAlive: Bool
    /// A 101 with an Upgrade header, or a 2xx answer to CONNECT: the connection becomes a tunnel.
    public var upgrade: Bool
    public var headLength: Int32
    /// The Content-Length the upstream declared (-1: none), kept for responses without a body
    /// (HEAD, 304), where it describes the representation.
    public var declaredLength: Int64 = -1

    public init() {
        version = .http11
        status = 0
        reasonStart = 0
        reasonEnd = 0
        headers = []
        framing = .none
        keepAlive = false
        upgrade = false
        headLength = 0
    }
}

extension RequestHead {
    @inlinable
    public func firstIndex(of kind: HeaderKind) -> Int? {
        headers.firstIndex { $0.kind == kind }
    }
}

extension ResponseHead {
    /// Calls `body` with each transfer coding the response's Transfer-Encoding fields list, in
    /// order, empty list elements skipped (so ",chunked" gives one: chunked).
    public func forEachTransferCoding(in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        for f in headers where f.kind == .transferEncoding {
            var list = ListElements(bytes, Int(f.valueStart), Int(f.valueEnd))
            while let (s, e) = list.next() { body(UnsafeRawBufferPointer(rebasing: bytes[s..<e])) }
        }
    }

    /// Whether a transfer coding other than chunked applies (the parser lets others through
    /// only before a final, single chunked): removing the chunks leaves the payload coded.
    public func hasCodingBesidesChunked(in bytes: UnsafeRawBufferPointer) -> Bool {
        var codings = 0
        forEachTransferCoding(in: bytes) { _ in codings += 1 }
        return codings > 1
    }

    @inlinable
    public func firstIndex(of kind: HeaderKind) -> Int? {
        headers.firstIndex { $0.kind == kind }
    }
}
