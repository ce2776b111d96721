// A chunked body read whole, turned into its payload alone where it lies: a signed request goes
// with a Content-Length, since its signature covers the payload (the primary in its client's
// buffer, a shadow copy in its own).
import Glibc
import HTTP1
import Reactor

extension ByteBuffer {
    /// The first `count` readable bytes, a whole chunked body, become its payload (chunk-size
    /// lines, extensions and trailer fields removed; bytes after them kept): its length.
    mutating func dechunk(count: Int) -> Int {
        guard count > 0 else { return 0 }
        var decoder = ChunkedDecoder()
        let base = readPointer
        let bytes = UnsafeRawBufferPointer(start: base, count: count)
        var i = 0
        var payload = 0
        walk: while true {
            switch decoder.nextSegment(bytes, from: i, keep: .payload) {
            case .copy(let end):
                if payload != i { memmove(base + payload, base + i, end - i) }
                payload += end - i
                i = end
            case .skip(let end):
                i = end
            case .done, .needMore, .failed:
                break walk   // the body was framed whole when it was read: .done
            }
        }
        remove(from: payload, count: count - payload)
        return payload
    }
}
