// W3C Trace Context (https://www.w3.org/TR/trace-context/): a request's `traceparent` is passed
// on when it is valid; a missing or invalid one is replaced by a new trace when the proxy starts
// traces, and an invalid one (with its `tracestate`, which means nothing without it) is dropped
// when it does not. The trace id goes to the access log.
import HTTP1

struct TraceContext {
    enum Action: UInt8 {
        /// Forward the request's trace headers as they are (none, or a valid traceparent).
        case pass
        /// Leave out every traceparent and tracestate field and write `traceparent` for this
        /// context.
        case replace
        /// Leave out every traceparent and tracestate field.
        case drop
    }

    var action = Action.pass
    /// The trace id (0, 0: none) and, for a started trace, the parent id written upstream.
    var traceHi: UInt64 = 0
    var traceLo: UInt64 = 0
    var parent: UInt64 = 0

    var hasTrace: Bool { traceHi != 0 || traceLo != 0 }

    /// What to do with a request's trace headers; `random` makes the ids of a started trace.
    static func decide(_ head: RequestHead, _ bytes: UnsafeRawBufferPointer, start: Bool,
                       random: () -> UInt64) -> TraceContext {
        var found = -1
        var count = 0
        for (i, f) in head.headers.enumerated() where f.kind == .traceparent {
            count += 1
            found = i
        }
        var ctx = TraceContext()
        if count == 1, let (hi, lo) = parse(head.headers[found].value(in: bytes)) {
            ctx.traceHi = hi
            ctx.traceLo = lo
            return ctx
        }
        if start {
            ctx.action = .replace
            repeat {
                ctx.traceHi = random()
                ctx.traceLo = random()
            } while !ctx.hasTrace
            repeat { ctx.parent = random() } while ctx.parent == 0
        } else if count > 0 {
            ctx.action = .drop
        }
        return ctx
    }

    /// The trace id of a valid traceparent value. Version 00 is exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase; a later version may carry more after a '-'
    /// (read as 00); version ff, an all-zero trace or parent id, or anything else is invalid.
    static func parse(_ v: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        guard v.count >= 55 else { return nil }
        guard let version = hex(v, 0, 2), version != 0xFF else { return nil }
        if version == 0 && v.count != 55 { return nil }
        if v.count > 55 && v[55] != UInt8(ascii: "-") { return nil }
        guard v[2] == UInt8(ascii: "-"), v[35] == UInt8(ascii: "-"), v[52] == UInt8(ascii: "-"),
              let hi = hex(v, 3, 16), let lo = hex(v, 19, 16), let parent = hex(v, 36, 16), hex(v, 53, 2) != nil,
              hi != 0 || lo != 0, parent != 0 else { return nil }
        return (hi, lo)
    }

    /// `count` lowercase hex digits at `at` (up to 16).
    private static func hex(_ v: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> UInt64? {
        var x: UInt64 = 0
        for i in at..<(at + count) {
            let c = v[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            default: return nil
            }
            x = x << 4 | UInt64(d)
        }
        return x
    }
}
