// Finds where a chunked body ends (RFC 9112 7.1) so Switchyard can relay it byte for byte; strict
// about every line ending and about the chunk-extension grammar, since a proxy and an upstream that
// split chunks differently can be made to disagree about where the next request starts. A relay
// that leaves extensions out, or all of the framing, walks the body as copy/skip segments
// (`nextSegment`).

public enum ChunkedResult: Sendable, Equatable {
    /// Every byte belongs to the body, which continues; consumed == bytes.count.
    case needMore(consumed: Int)
    /// The body ended after `consumed` bytes; the rest is the next message.
    case done(consumed: Int)
    /// Bad framing: 400, must close (a caller relaying a response answers 502 instead).
    case failed(HTTPParseError)
}

public struct ChunkedDecoder: Sendable {
    private enum State: UInt8 {
        case sizeStart, size, sizeSpace, sizeLF
        // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
        case extNameStart, extName, extAfterName, extValueStart, extToken, extQuoted, extEscape,
             extAfterQuote, extSpace
        case data, dataCR, dataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, finalLF
        case done, failed
    }

    private let maxLineBytes: Int
    private let maxTrailerBytes: Int
    private var state = State.sizeStart
    private var chunkSize: Int64 = 0
    private var sizeDigits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var remaining: Int64 = 0
    private var error = HTTPParseError.fatal("invalid chunked body")

    /// Total payload bytes (chunk data only) seen so far; used for body-size limits.
    public private(set) var payloadBytes: Int64 = 0

    /// `maxLineBytes` bounds a chunk-size line with its extensions; `maxTrailerBytes` bounds the
    /// trailer section.
    public init(maxLineBytes: Int = 4096, maxTrailerBytes: Int = 16384) {
        self.maxLineBytes = maxLineBytes
        self.maxTrailerBytes = maxTrailerBytes
    }

    public mutating func reset() {
        self = ChunkedDecoder(maxLineBytes: maxLineBytes, maxTrailerBytes: maxTrailerBytes)
    }

    /// Returns how many of `bytes` belong to the body and whether the body is complete. Chunk data
    /// is skipped in one step, without looking at its bytes.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> ChunkedResult {
        let (stop, end) = run(bytes, from: 0, keep: nil)
        switch stop {
        case .done: return .done(consumed: end)
        case .failed: return .failed(error)
        case .boundary, .exhausted: return .needMore(consumed: bytes.count)
        }
    }

    /// The next run of `bytes` from `from` that a relay copies or leaves out. Keeping `.chunks`:
    /// chunk extensions (with the whitespace and ";" that introduce them) and trailer field lines
    /// are `.skip`, everything else (sizes, line ends, data, the final CRLF) is `.copy`, so
    /// copying only the `.copy` runs re-frames the body without extensions. Keeping `.payload`:
    /// only chunk data is `.copy`. Call again from the returned end; `.needMore` once `from`
    /// reaches the end of `bytes`, `.done` for the run that ends the body (the rest is the next
    /// message; with `.payload` that run is empty, the framing before it a `.skip`).
    public mutating func nextSegment(_ bytes: UnsafeRawBufferPointer, from: Int, keep: ChunkedKeep = .chunks) -> ChunkedSegment {
        if state == .failed { return .failed(error) }
        if state == .done { return .done(end: from) }
        guard from < bytes.count else { return .needMore }
        let skip = state != .data && isLeftOut(bytes[from], keep)
        let (stop, end) = run(bytes, from: from, keep: keep)
        switch stop {
        case .done: return skip ? .skip(end: end) : .done(end: end)
        case .failed: return .failed(error)
        case .boundary, .exhausted: return skip ? .skip(end: end) : .copy(end: end)
        }
    }

    private enum Stop { case exhausted, boundary, done, failed }

    /// Whether `b`, read in the current state, is left out of what a relay passes on. Keeping
    /// `.payload`, every byte but chunk data. Keeping `.chunks`: a chunk extension (from the
    /// first whitespace or ";" after the size up to, not including, the CR that ends the line),
    /// or a trailer field line with its CRLF. Trailer fields are dropped whole (RFC 9110 6.5.1
    /// lets a recipient discard them): one naming Content-Length, Transfer-Encoding, Host or
    /// Authorization could be merged into the head upstream, and no allow-list can know every
    /// field an upstream treats that way.
    @inline(__always)
    private func isLeftOut(_ b: UInt8, _ keep: ChunkedKeep) -> Bool {
        if keep == .payload { return state != .data }
        switch state {
        case .size: return b == ASCII.semicolon || isOWS(b)
        case .sizeSpace, .extNameStart, .extName, .extAfterName, .extValueStart, .extToken, .extQuoted,
             .extEscape, .extAfterQuote, .extSpace:
            return b != ASCII.cr
        case .trailerLineStart: return b != ASCII.cr
        case .trailerName, .trailerValue, .trailerLF: return true
        default: return false
        }
    }

    /// Runs the state machine over `bytes[from...]`. When segmenting (`keep` given), stops
    /// before the first byte that is left out when the run's first byte is not, or the other
    /// way round (`.boundary`).
    private mutating func run(_ bytes: UnsafeRawBufferPointer, from: Int, keep: ChunkedKeep?) -> (Stop, Int) {
        let count = bytes.count
        var i = from
        var runSkips = false
        if let keep, i < count && state != .data { runSkips = isLeftOut(bytes[i], keep) }
        while i < count {
            if state == .data {
                if runSkips { return (.boundary, i) }
                let take = Int(min(remaining, Int64(count - i)))
                i += take
                remaining -= Int64(take)
                payloadBytes += Int64(take)
                if remaining == 0 { state = .dataCR }
                continue
            }
            let b = bytes[i]
            if let keep, i > from && isLeftOut(b, keep) != runSkips { return (.boundary, i) }
            i += 1
            switch state {
            case .sizeStart:
                guard let v = hexValue(b) else { return fail("invalid chunk size") }
                chunkSize = Int64(v)
                sizeDigits = 1
                lineBytes = 1
                state = .size
            case .size:
                lineBytes += 1
                if let v = hexValue(b) {
                    sizeDigits += 1
                    // 15 hex digits stay below 2^60: no overflow checks on the way.
                    guard sizeDigits <= 15 else { return fail("chunk size too large") }
                    chunkSize = chunkSize << 4 | Int64(v)
                } else if b == ASCII.cr {
                    state = .sizeLF
                } else if b == ASCII.semicolon {
                    state = .extNameStart
                } else if isOWS(b) {
                    state = .sizeSpace
                } else {
                    return fail("invalid chunk size")
                }
            case .sizeSpace:
                // BWS is allowed only before an extension (RFC 9112 7.1.1), never before the CRLF.
                guard countLineByte() else { return fail("chunk line too long") }
                if b == ASCII.semicolon {
                    state = .extNameStart
                } else if !isOWS(b) {
                    return fail("invalid chunk size")
                }
            case .extNameStart:
                guard countLineByte() else { return fail("chunk line too long") }
                if isTokenByte(b) {
                    state = .extName
                } else if !isOWS(b) {
                    return fail("invalid chunk extension")
                }
            case .extName:
                guard countLineByte() else { return fail("chunk line too long") }
                if isTokenByte(b) { continue }
                switch b {
                case ASCII.cr: state = .sizeLF
                case ASCII.semicolon: state = .extNameStart
                case ASCII.equals: state = .extValueStart
                case ASCII.space, ASCII.ht: state = .extAfterName
                default: return fail("invalid chunk extension")
                }
            case .extAfterName:
                guard countLineByte() else { return fail("chunk line too long") }
                switch b {
                case ASCII.semicolon: state = .extNameStart
                case ASCII.equals: state = .extValueStart
                case ASCII.space, ASCII.ht: break
                default: return fail("invalid chunk extension")
                }
            case .extValueStart:
                guard countLineByte() else { return fail("chunk line too long") }
                if b == ASCII.quote {
                    state = .extQuoted
                } else if isTokenByte(b) {
                    state = .extToken
                } else if !isOWS(b) {
                    return fail("invalid chunk extension")
                }
            case .extToken:
                guard countLineByte() else { return fail("chunk line too long") }
                if isTokenByte(b) { continue }
                switch b {
                case ASCII.cr: state = .sizeLF
                case ASCII.semicolon: state = .extNameStart
                case ASCII.space, ASCII.ht: state = .extSpace
                default: return fail("invalid chunk extension")
                }
            case .extQuoted:
                // qdtext: HTAB, SP, VCHAR but '"' and '\', obs-text.
                guard countLineByte() else { return fail("chunk line too long") }
                if b == ASCII.quote {
                    state = .extAfterQuote
                } else if b == ASCII.backslash {
                    state = .extEscape
                } else if !isFieldByte(b) {
                    return fail("invalid chunk extension")
                }
            case .extEscape:
                guard countLineByte() else { return fail("chunk line too long") }
                guard isFieldByte(b) else { return fail("invalid chunk extension") }
                state = .extQuoted
            case .extAfterQuote:
                guard countLineByte() else { return fail("chunk line too long") }
                switch b {
                case ASCII.cr: state = .sizeLF
                case ASCII.semicolon: state = .extNameStart
                case ASCII.space, ASCII.ht: state = .extSpace
                default: return fail("invalid chunk extension")
                }
            case .extSpace:
                // Whitespace after an extension leads only to the next one, never to the CRLF.
                guard countLineByte() else { return fail("chunk line too long") }
                if b == ASCII.semicolon {
                    state = .extNameStart
                } else if !isOWS(b) {
                    return fail("invalid chunk extension")
                }
            case .sizeLF:
                guard b == ASCII.lf else { return fail("chunk size line without CRLF") }
                if chunkSize == 0 {
                    state = .trailerLineStart
                } else {
                    remaining = chunkSize
                    state = .data
                }
            case .data:
                break
            case .dataCR:
                guard b == ASCII.cr else { return fail("missing CRLF after chunk data") }
                state = .dataLF
            case .dataLF:
                guard b == ASCII.lf else { return fail("missing CRLF after chunk data") }
                state = .sizeStart
            case .trailerLineStart:
                trailerBytes += 1
                if b == ASCII.cr {
                    state = .finalLF
                } else if isTokenByte(b) {
                    state = .trailerName
                } else {
                    return fail(isOWS(b) ? "obsolete line folding in trailer" : "invalid trailer field")
                }
            case .trailerName:
                trailerBytes += 1
                guard trailerBytes <= maxTrailerBytes else { return fail("trailer section too large") }
                if b == ASCII.colon {
                    state = .trailerValue
                } else if !isTokenByte(b) {
                    return fail("invalid trailer field")
                }
            case .trailerValue:
                trailerBytes += 1
                guard trailerBytes <= maxTrailerBytes else { return fail("trailer section too large") }
                if b == ASCII.cr {
                    state = .trailerLF
                } else if !isFieldByte(b) {
                    return fail("invalid trailer field")
                }
            case .trailerLF:
                guard b == ASCII.lf else { return fail("trailer line without CRLF") }
                state = .trailerLineStart
            case .finalLF:
                guard b == ASCII.lf else { return fail("chunked body without final CRLF") }
                state = .done
                return (.done, i)
            case .done:
                return (.done, i - 1)
            case .failed:
                return (.failed, i)
            }
        }
        switch state {
        case .done: return (.done, i)
        case .failed: return (.failed, i)
        default: return (.exhausted, i)
        }
    }

    @inline(__always)
    private mutating func countLineByte() -> Bool {
        lineBytes += 1
        return lineBytes <= maxLineBytes
    }

    private mutating func fail(_ reason: StaticString) -> (Stop, Int) {
        state = .failed
        error = .fatal(reason)
        return (.failed, 0)
    }
}

/// What a relay walking a chunked body passes on (`ChunkedDecoder.nextSegment`).
public enum ChunkedKeep: Sendable {
    /// The chunks re-framed without extensions and trailer fields.
    case chunks
    /// The chunk data alone, for a recipient that takes no chunked framing (an HTTP/1.0 client).
    case payload
}

/// One step of `ChunkedDecoder.nextSegment`.
public enum ChunkedSegment: Sendable, Equatable {
    /// Bytes [from, end) go to the peer as they are.
    case copy(end: Int)
    /// Bytes [from, end) are chunk extensions: leave them out.
    case skip(end: Int)
    /// Bytes [from, end) end the body and go to the peer; what follows is the next message.
    case done(end: Int)
    /// Every byte given has been walked; call again with more.
    case needMore
    /// Bad framing: 400, must close (502 when relaying a response).
    case failed(HTTPParseError)
}
