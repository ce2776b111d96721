// Where one upstream response ends, for every HTTP client in Switchyard (upstream, mirror, warm-up,
// health checks): the head, 1xx interim heads, then the body by its framing (RFC 9112 6.3).
// Offsets and counts only: nothing is allocated per message once `head.headers` has grown.

/// What the framer made of the bytes it was given.
public enum ResponseFrame: Sendable, Equatable {
    /// No decision yet. While a head is awaited, keep every byte given and call again with the
    /// longer buffer; while a body is framed, this is only answered for an empty input.
    case needMore
    /// A 1xx head other than 101 (`framer.head`): the first `headLength` bytes are that head, to
    /// be forwarded or dropped; then call again with the bytes after it. The final head follows.
    case interim(headLength: Int)
    /// The final head (`framer.head`) is the first `headLength` bytes; then call again with the
    /// bytes after it. A bodiless response is already complete (`isComplete`).
    case head(headLength: Int)
    /// The first `count` bytes given belong to the body (in a tunnel, to the tunnel); `complete`
    /// when they end the message, whose next byte, if any, starts the next response.
    case body(count: Int, complete: Bool)
    /// Every failure is a 502 and closes the upstream connection: nothing after it can be framed.
    case failed(HTTPParseError)
}

public struct ResponseFramer: Sendable {
    public enum Mode: UInt8, Sendable {
        /// Waiting for the (next) head.
        case head
        case contentLength
        case chunked
        /// The body ends when the upstream closes.
        case untilClose
        /// A 101 or a 2xx answer to CONNECT: every later byte belongs to the tunnel.
        case tunnel
        case complete
        case failed
    }

    public private(set) var mode = Mode.head
    /// The head of the last `.interim` or `.head`; `headers` keeps its capacity between responses.
    /// Its offsets are into the bytes that were given with that answer.
    public private(set) var head = ResponseHead()
    private var parser: ResponseParser
    private var chunked: ChunkedDecoder
    private var method = Method.get
    private var upgradeRequested = false
    private var remaining: Int64 = 0
    private var error = HTTPParseError.upstream("invalid response")

    public init(limits: HTTPLimits) {
        parser = ResponseParser(limits: limits)
        chunked = ChunkedDecoder()
    }

    /// Before each response. `upgradeRequested` tells whether the request asked for a protocol
    /// switch: a 101 to a request that did not is refused.
    public mutating func reset(requestMethod: Method, upgradeRequested: Bool = false) {
        mode = .head
        method = requestMethod
        self.upgradeRequested = upgradeRequested
        remaining = 0
        parser.reset()
        chunked.reset()
    }

    /// Body bytes still expected of a Content-Length body; nil in every other mode.
    public var remainingLength: Int64? { mode == .contentLength ? remaining : nil }

    public var isComplete: Bool { mode == .complete }
    public var isTunnel: Bool { mode == .tunnel }

    /// Chunk data seen so far in a chunked body (without sizes, extensions and trailers).
    public var chunkedPayloadBytes: Int64 { chunked.payloadBytes }

    /// `bytes` starts at the first byte not yet framed. See `ResponseFrame` for what to do with
    /// each answer.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> ResponseFrame {
        switch mode {
        case .head:
            return parseHead(bytes)
        case .contentLength:
            guard bytes.count > 0 else { return .needMore }
            let take = Int(min(Int64(bytes.count), remaining))
            remaining -= Int64(take)
            if remaining == 0 { mode = .complete }
            return .body(count: take, complete: remaining == 0)
        case .chunked:
            guard bytes.count > 0 else { return .needMore }
            switch chunked.consume(bytes) {
            case .needMore(let n):
                return .body(count: n, complete: false)
            case .done(let n):
                mode = .complete
                return .body(count: n, complete: true)
            case .failed(let e):
                return fail(HTTPParseError(status: 502, reason: e.reason, mustClose: true))
            }
        case .untilClose, .tunnel:
            guard bytes.count > 0 else { return .needMore }
            return .body(count: bytes.count, complete: false)
        case .complete:
            return .body(count: 0, complete: true)
        case .failed:
            return .failed(error)
        }
    }

    /// A chunked body for a recipient that takes no chunked framing (an HTTP/1.0 client), in
    /// place of `feed`: the runs of chunk data (`.copy`) and of framing (`.skip`: sizes,
    /// extensions, line ends, trailers) from `from`, as `ChunkedDecoder.nextSegment` keeping
    /// `.payload` walks them. The message is complete at `.done`; a failure is a 502.
    public mutating func nextPayloadSegment(_ bytes: UnsafeRawBufferPointer, from: Int) -> ChunkedSegment {
        switch mode {
        case .chunked: break
        case .complete: return .done(end: from)
        default: return .failed(mode == .failed ? error : .upstream("not a chunked body"))
        }
        let segment = chunked.nextSegment(bytes, from: from, keep: .payload)
        switch segment {
        case .done: mode = .complete
        case .failed(let e):
            let failure = HTTPParseError(status: 502, reason: e.reason, mustClose: true)
            _ = fail(failure)
            return .failed(failure)
        case .copy, .skip, .needMore: break
        }
        return segment
    }

    /// Accounts `n` bytes of a Content-Length body that went around `feed` (spliced in the
    /// kernel). True when they completed the body.
    @discardableResult
    public mutating func bodyBytesMovedExternally(_ n: Int) -> Bool {
        precondition(mode == .contentLength && n >= 0 && Int64(n) <= remaining,
                     "body bytes moved beyond the Content-Length")
        remaining -= Int64(n)
        if remaining == 0 { mode = .complete }
        return remaining == 0
    }

    /// The upstream closed its side. True when that ends the message (a body until close, a
    /// tunnel, or a response already complete); false when the response is cut short, including
    /// a close before any head (whether that is a retryable "nothing received" is the caller's).
    public mutating func endOfStream() -> Bool {
        switch mode {
        case .untilClose:
            mode = .complete
            return true
        case .tunnel, .complete:
            return true
        case .head, .contentLength, .chunked, .failed:
            return false
        }
    }

    private mutating func parseHead(_ bytes: UnsafeRawBufferPointer) -> ResponseFrame {
        switch parser.parse(bytes, requestMethod: method, into: &head) {
        case .incomplete:
            return .needMore
        case .failed(let e):
            return fail(e)
        case .complete:
            break
        }
        let length = Int(head.headLength)
        let status = head.status
        if status < 200 && status != 101 { return .interim(headLength: length) }
        if status == 101 && !upgradeRequested { return fail(.upstream("101 without an upgrade request")) }
        if head.upgrade {
            mode = .tunnel
            return .head(headLength: length)
        }
        switch head.framing {
        case .none:
            mode = .complete
        case .contentLength(let n):
            remaining = n
            mode = n > 0 ? .contentLength : .complete
        case .chunked:
            mode = .chunked
        case .untilClose:
            mode = .untilClose
        }
        return .head(headLength: length)
    }

    private mutating func fail(_ e: HTTPParseError) -> ResponseFrame {
        mode = .failed
        error = e
        return .failed(e)
    }
}
