// Experiment unit ids in text: exactly 16 lowercase hex digits, the one spelling a cookie, a
// header or a log line carries, so the same unit never reads as two (no case, no leading "0x",
// no shortened forms). Writing and parsing work on raw buffers, with no String per request.

public enum UnitID {
    /// The length of every unit id's text.
    public static let length = 16

    /// Writes `id` as 16 lowercase hex digits at the start of `buffer` and returns 16, or
    /// returns 0 and writes nothing when the buffer is shorter than that.
    @discardableResult @inlinable
    public static func write(_ id: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= length else { return 0 }
        for i in 0..<length {
            let nibble = UInt8(truncatingIfNeeded: id >> UInt64(4 * (length - 1 - i)) & 0xF)
            buffer[i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + (nibble - 10)
        }
        return length
    }

    /// The id `bytes` spell, or nil unless they are exactly 16 characters of [0-9a-f].
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes.count == length else { return nil }
        var id: UInt64 = 0
        for c in bytes {
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            default: return nil
            }
            id = id << 4 | UInt64(nibble)
        }
        return id
    }
}
