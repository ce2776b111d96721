// Finds where a chunked body ends (RFC 9112 7.1) so Switchyard can relay it byte for byte; strict
// about every line ending, since a proxy and an upstream that split chunks differently can be
// made to disagree about where the next request starts.

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
        case sizeStart, size, sizeSpace, extensions, sizeLF
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
        let count = bytes.count
        var i = 0
        while i < count {
            if state == .data {
                let take = Int(min(remaining, Int64(count - i)))
                i += take
                remaining -= Int64(take)
                payloadBytes += Int64(take)
                if remaining == 0 { state = .dataCR }
                continue
            }
            let b = bytes[i]
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
                    state = .extensions
                } else if isOWS(b) {
                    state = .sizeSpace
                } else {
                    return fail("invalid chunk size")
                }
            case .sizeSpace:
                // BWS is allowed only before an extension (RFC 9112 7.1.1), never before the CRLF.
                lineBytes += 1
                guard lineBytes <= maxLineBytes else { return fail("chunk line too long") }
                if b == ASCII.semicolon {
                    state = .extensions
                } else if !isOWS(b) {
                    return fail("invalid chunk size")
                }
            case .extensions:
                // Extensions are relayed, not interpreted: only their bytes and length are checked.
                lineBytes += 1
                guard lineBytes <= maxLineBytes else { return fail("chunk line too long") }
                if b == ASCII.cr {
                    state = .sizeLF
                } else if !isFieldByte(b) {
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
                return .done(consumed: i)
            case .done:
                return .done(consumed: 0)
            case .failed:
                return .failed(error)
            }
        }
        switch state {
        case .done: return .done(consumed: 0)
        case .failed: return .failed(error)
        default: return .needMore(consumed: count)
        }
    }

    private mutating func fail(_ reason: StaticString) -> ChunkedResult {
        state = .failed
        error = .fatal(reason)
        return .failed(error)
    }
}
