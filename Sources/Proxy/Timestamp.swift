// RFC 3339 UTC timestamps with milliseconds ("2025-03-01T12:34:56.789Z"), written as bytes
// without Foundation or a libc call: the date comes from the day count by arithmetic (Howard
// Hinnant's civil_from_days), and a writer keeps the text of the current second.
import Glibc

public enum Timestamp {
    public static let length = 24

    /// Wall-clock nanoseconds since the epoch.
    public static func nowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// The text of `ns` ("2025-03-01T12:34:56.789Z"), for the control plane: no date formatter
    /// (Foundation's loads ICU's time zone data, megabytes of every process's memory).
    public static func string(ns: UInt64) -> String {
        String(unsafeUninitializedCapacity: length) { buffer in
            write(ns, to: buffer.baseAddress!)
            return length
        }
    }

    /// Writes the 24 bytes of `ns` to `p`.
    public static func write(_ ns: UInt64, to p: UnsafeMutablePointer<UInt8>) {
        writeSecond(ns / 1_000_000_000, to: p)
        writeMillis(ns, to: p)
    }

    /// "YYYY-MM-DDTHH:MM:SS" (19 bytes) of a second since the epoch.
    static func writeSecond(_ second: UInt64, to p: UnsafeMutablePointer<UInt8>) {
        let days = Int64(second / 86_400)
        let rest = Int(second % 86_400)
        // civil_from_days
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        let y = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        digits(y, 4, p)
        p[4] = UInt8(ascii: "-")
        digits(m, 2, p + 5)
        p[7] = UInt8(ascii: "-")
        digits(d, 2, p + 8)
        p[10] = UInt8(ascii: "T")
        digits(rest / 3600, 2, p + 11)
        p[13] = UInt8(ascii: ":")
        digits(rest / 60 % 60, 2, p + 14)
        p[16] = UInt8(ascii: ":")
        digits(rest % 60, 2, p + 17)
    }

    /// ".mmmZ" at offset 19.
    @inline(__always)
    static func writeMillis(_ ns: UInt64, to p: UnsafeMutablePointer<UInt8>) {
        p[19] = UInt8(ascii: ".")
        digits(Int(ns / 1_000_000 % 1000), 3, p + 20)
        p[23] = UInt8(ascii: "Z")
    }

    @inline(__always)
    static func digits(_ v: Int, _ width: Int, _ p: UnsafeMutablePointer<UInt8>) {
        var x = v
        var i = width - 1
        while i >= 0 {
            p[i] = UInt8(truncatingIfNeeded: 48 + x % 10)
            x /= 10
            i -= 1
        }
    }

    /// The timestamp of `ns` as a String (control plane).
    public static func string(_ ns: UInt64 = nowNs()) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { buf in
            write(ns, to: buf.baseAddress!)
            return String(decoding: buf, as: UTF8.self)
        }
    }
}

/// Keeps the text of the last second written, so a busy loop formats a date once a second.
struct TimestampWriter {
    private var second = UInt64.max
    private var text = (UInt64(0), UInt64(0), UInt64(0))   // 24 bytes

    mutating func write(_ ns: UInt64, to p: UnsafeMutablePointer<UInt8>) {
        let s = ns / 1_000_000_000
        if s != second {
            second = s
            withUnsafeMutableBytes(of: &text) { Timestamp.writeSecond(s, to: $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }
        withUnsafeBytes(of: &text) { p.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 19) }
        Timestamp.writeMillis(ns, to: p)
    }
}
