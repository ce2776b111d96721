// Finds where an HTTP/1 head ends in a growing buffer, remembering how far it looked so a head that
// arrives a byte at a time costs linear time; Switchyard parses the head only once it is whole.

struct HeadScanner: Sendable {
    enum Outcome {
        case incomplete
        /// The start line begins at `start` (after skipped empty lines); the head is [0, end).
        case complete(start: Int, end: Int)
        case failed(HTTPParseError)
    }

    /// Bytes [0, position) have been examined.
    private(set) var position = 0
    private var lineStart = 0
    /// Start of the start line; -1 while leading empty lines are being skipped.
    private var startLine = -1
    /// Whether the start line's LF has been seen.
    private var inFields = false
    private var firstSpace = -1
    private var secondSpace = -1
    private var spaceScan = 0

    /// `skipLeadingEmptyLines` is for requests (RFC 9112 2.2); `maxTargetBytes` (requests, else
    /// nil) makes an overlong request-target fail before its line is even complete.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, maxHeadBytes: Int, maxTargetBytes: Int?,
                       skipLeadingEmptyLines: Bool, tooLarge: HTTPParseError) -> Outcome {
        let limit = min(bytes.count, maxHeadBytes)
        var i = position
        defer { position = i }

        if startLine < 0 {
            if skipLeadingEmptyLines {
                while i < limit {
                    let b = bytes[i]
                    if b == ASCII.lf {
                        i += 1
                    } else if b == ASCII.cr {
                        if i + 1 == bytes.count { break }
                        guard bytes[i + 1] == ASCII.lf else { return .failed(.fatal("bare CR in head")) }
                        i += 2
                    } else {
                        break
                    }
                }
                if i >= limit || bytes[i] == ASCII.cr {
                    i = min(i, limit)
                    return bytes.count >= maxHeadBytes ? .failed(tooLarge) : .incomplete
                }
            }
            startLine = i
            lineStart = i
        }

        if !inFields {
            i = nextLF(bytes, from: i, limit: limit)
            // Only a start line longer than the limit can hold an overlong target; its spaces are
            // looked for once each, however the line arrives.
            if let maxTarget = maxTargetBytes, i - startLine > maxTarget {
                var j = max(spaceScan, startLine)
                while j < i && secondSpace < 0 {
                    if bytes[j] == ASCII.space {
                        if firstSpace < 0 { firstSpace = j } else { secondSpace = j }
                    }
                    j += 1
                }
                spaceScan = j
                if firstSpace >= 0 && (secondSpace >= 0 ? secondSpace : i) - firstSpace - 1 > maxTarget {
                    return .failed(.fatal("request-target too long", 414))
                }
            }
            if i == limit { return bytes.count >= maxHeadBytes ? .failed(tooLarge) : .incomplete }
            inFields = true
            i += 1
            lineStart = i
        }

        while true {
            i = nextLF(bytes, from: i, limit: limit)
            if i == limit { return bytes.count >= maxHeadBytes ? .failed(tooLarge) : .incomplete }
            let length = i - lineStart
            i += 1
            if length == 0 || (length == 1 && bytes[lineStart] == ASCII.cr) {
                return .complete(start: startLine, end: i)
            }
            // A line opening with a bare CR would otherwise hide the end of the head from this scan
            // ("\r\r\n" is not an empty line) and the message would wait for more bytes.
            if bytes[lineStart] == ASCII.cr { return .failed(.fatal("bare CR in head")) }
            lineStart = i
        }
    }
}

/// Index of the first LF in [from, limit), or limit. Eight bytes at a time: header lines average
/// a few dozen bytes, so most of them are skipped in a handful of loads.
@inline(__always)
func nextLF(_ bytes: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int {
    var i = from
    if let base = bytes.baseAddress {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let lfs: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
        while i + 8 <= limit {
            let x = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ lfs
            // A zero byte in x is an LF; the lowest flagged byte is always a true one.
            let found = (x &- ones) & ~x & highs
            if found != 0 { return i + found.trailingZeroBitCount / 8 }
            i += 8
        }
    }
    while i < limit {
        if bytes[i] == ASCII.lf { return i }
        i += 1
    }
    return limit
}
