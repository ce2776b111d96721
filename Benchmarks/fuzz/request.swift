// libFuzzer target: RequestParser plus body framing (Content-Length countdown, ChunkedDecoder)
// over pipelined requests, fed at once and in small pieces; both must agree on every message
// boundary, and every offset the parser reports must lie inside the head it parsed.

private struct Outcome: Equatable {
    /// Per request: head end, body end, as offsets into the input.
    var boundaries: [Int] = []
    var failure: HTTPParseError?
}

private func run(_ input: UnsafeRawBufferPointer, limits: HTTPLimits, step: Int) -> Outcome {
    var parser = RequestParser(limits: limits)
    var head = RequestHead()
    var chunked = ChunkedDecoder(maxLineBytes: 64, maxTrailerBytes: 256)
    var out = Outcome()
    var framed = 0
    var arrived = min(input.count, step)
    var inBody = false
    var remaining: Int64 = 0
    var isChunked = false
    while framed < input.count {
        let given = UnsafeRawBufferPointer(rebasing: input[framed..<arrived])
        if !inBody {
            switch parser.parse(given, into: &head) {
            case .incomplete:
                guard arrived < input.count else { return out }
                arrived = min(input.count, arrived + step)
                continue
            case .failed(let e):
                precondition(e.status >= 400 && e.status < 600)
                if e.mustClose {
                    out.failure = e
                    return out
                }
                // A sound head with a request error: answered, its body skipped, connection kept.
                out.failure = e
                checkHead(head, given.count)
            case .complete:
                checkHead(head, given.count)
            }
            framed += Int(head.headLength)
            out.boundaries.append(framed)
            switch head.framing {
            case .none:
                out.boundaries.append(framed)
                if out.failure != nil { return out }
                continue
            case .contentLength(let n):
                precondition(n > 0, "a zero Content-Length must be reported as no body")
                remaining = n
                isChunked = false
            case .chunked:
                chunked.reset()
                isChunked = true
            case .untilClose:
                preconditionFailure("requests are never framed by close")
            }
            inBody = true
            continue
        }
        if framed == arrived {
            arrived = min(input.count, arrived + step)
            continue
        }
        var ended = false
        if isChunked {
            switch chunked.consume(given) {
            case .needMore(let n):
                precondition(n == given.count)
                framed += n
            case .done(let n):
                precondition(n > 0 && n <= given.count)
                framed += n
                ended = true
            case .failed(let e):
                precondition(e.mustClose)
                out.failure = e
                return out
            }
        } else {
            let take = Int(min(remaining, Int64(given.count)))
            remaining -= Int64(take)
            framed += take
            ended = remaining == 0
        }
        if ended {
            inBody = false
            out.boundaries.append(framed)
            if out.failure != nil { return out }
        }
    }
    return out
}

private func checkHead(_ head: RequestHead, _ available: Int) {
    let length = Int(head.headLength)
    precondition(length > 0 && length <= available, "head beyond the bytes given")
    precondition(head.methodStart < head.methodEnd && head.methodEnd < head.targetStart)
    precondition(head.targetStart < head.targetEnd && Int(head.targetEnd) <= length)
    precondition(head.targetStart <= head.pathEnd && head.pathEnd <= head.targetEnd)
    precondition(head.hostIndex < Int32(head.headers.count))
    for h in head.headers {
        precondition(head.targetEnd < h.nameStart && h.nameStart < h.nameEnd)
        precondition(h.nameEnd <= h.valueStart && h.valueStart <= h.valueEnd && Int(h.valueEnd) <= length)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    // Small limits so the limit checks are reached with short inputs, or the defaults.
    let limits = data[0] & 0x80 != 0
        ? HTTPLimits(maxHeadBytes: 256, maxHeaders: 8, maxURIBytes: 32)
        : HTTPLimits()
    let step = 1 + Int(data[0] & 0x0F)
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let whole = run(input, limits: limits, step: max(input.count, 1))
    let pieces = run(input, limits: limits, step: step)
    precondition(whole == pieces, "framing depends on how the bytes arrived")
    return 0
}
