// The Date field of the answers the proxy makes itself (RFC 9110 6.6.1: a server with a clock
// sends one), as an IMF-fixdate line formatted at most once a second per event loop.
import Glibc

struct HTTPDate {
    private var second: time_t = -1
    /// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" for `second`.
    private var line: [UInt8] = []

    private static let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The line for now; `body` reads it without a copy.
    mutating func withLine<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let now = time(nil)
        if now != second {
            second = now
            line = Self.format(now)
        }
        return line.withUnsafeBytes(body)
    }

    static func format(_ t: time_t) -> [UInt8] {
        var clock = t
        var tm = Glibc.tm()
        guard gmtime_r(&clock, &tm) != nil else { return [] }
        var out: [UInt8] = Array("Date: ".utf8)
        func two(_ n: Int32) { out.append(UInt8(48 + n / 10)); out.append(UInt8(48 + n % 10)) }
        func text(_ s: StaticString) { out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        text(days[Int(max(0, min(6, tm.tm_wday)))])
        out.append(contentsOf: Array(", ".utf8))
        two(tm.tm_mday)
        out.append(32)
        text(months[Int(max(0, min(11, tm.tm_mon)))])
        out.append(32)
        out.append(contentsOf: Array(String(1900 + Int(tm.tm_year)).utf8))
        out.append(32)
        two(tm.tm_hour)
        out.append(58)
        two(tm.tm_min)
        out.append(58)
        two(tm.tm_sec)
        out.append(contentsOf: Array(" GMT\r\n".utf8))
        return out
    }
}
