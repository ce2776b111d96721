// libFuzzer target: ChunkedDecoder fed at once, in pieces and a byte at a time must end at the
// same byte (or fail at the same one), report no more than it was given, and agree with a
// slow reference reading of RFC 9112 7.1 on where a valid body ends and its payload size.

private struct Outcome: Equatable {
    var end: Int?          // offset just after the body, when it ended
    var failed = false
    var payload: Int64 = 0
}

private func run(_ input: UnsafeRawBufferPointer, step: Int, lineLimit: Int, trailerLimit: Int) -> Outcome {
    var decoder = ChunkedDecoder(maxLineBytes: lineLimit, maxTrailerBytes: trailerLimit)
    var out = Outcome()
    var at = 0
    while at < input.count {
        let given = UnsafeRawBufferPointer(rebasing: input[at..<min(input.count, at + step)])
        switch decoder.consume(given) {
        case .needMore(let n):
            precondition(n == given.count, "needMore without taking every byte")
            at += n
        case .done(let n):
            precondition(n > 0 && n <= given.count, "done beyond the bytes given")
            out.end = at + n
            out.payload = decoder.payloadBytes
            precondition(decoder.consume(given) == .done(consumed: 0), "a finished body took more")
            return out
        case .failed(let e):
            precondition(e.mustClose && e.status == 400)
            out.failed = true
            out.payload = decoder.payloadBytes
            return out
        }
    }
    out.payload = decoder.payloadBytes
    return out
}

/// Where a well-formed body ends and its payload, read the slow way; nil when the input is not
/// a complete body or uses anything the decoder refuses (limits are not modelled: only inputs
/// well inside them are compared).
private func reference(_ b: UnsafeRawBufferPointer) -> (end: Int, payload: Int64)? {
    var i = 0
    var payload: Int64 = 0
    func isHex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) }
    while true {
        var size: Int64 = 0
        var digits = 0
        while i < b.count, isHex(b[i]) {
            let c = b[i]
            let v = c <= 0x39 ? Int64(c - 0x30) : Int64((c | 0x20) - 0x61 + 10)
            size = size * 16 + v
            digits += 1
            if digits > 8 { return nil }
            i += 1
        }
        guard digits > 0, i + 1 < b.count, b[i] == 0x0D, b[i + 1] == 0x0A else { return nil }
        i += 2
        if size == 0 { break }
        guard Int64(b.count - i) >= size + 2 else { return nil }
        i += Int(size)
        payload += size
        guard b[i] == 0x0D, b[i + 1] == 0x0A else { return nil }
        i += 2
    }
    // No trailers in the reference: the empty line must follow at once.
    guard i + 1 < b.count, b[i] == 0x0D, b[i + 1] == 0x0A else { return nil }
    return (i + 2, payload)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunked(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let small = data[0] & 0x80 != 0
    let lineLimit = small ? 8 : 4096
    let trailerLimit = small ? 16 : 16384
    let step = 1 + Int(data[0] & 0x1F)
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let whole = run(input, step: max(input.count, 1), lineLimit: lineLimit, trailerLimit: trailerLimit)
    precondition(whole == run(input, step: step, lineLimit: lineLimit, trailerLimit: trailerLimit),
                 "decoding depends on how the bytes arrived")
    precondition(whole == run(input, step: 1, lineLimit: lineLimit, trailerLimit: trailerLimit),
                 "decoding a byte at a time differs")
    if !small, let (end, payload) = reference(input) {
        precondition(whole.end == end && whole.payload == payload, "decoder disagrees with the reference")
    }
    if let end = whole.end { precondition(end <= input.count) }
    return 0
}
