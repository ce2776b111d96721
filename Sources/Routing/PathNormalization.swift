// The path that path prefixes are matched against (RFC 3986 6.2.2): percent-encoded unreserved
// bytes decoded, then dot segments removed; empty segments ("//") kept, since servers differ on
// them. Only for matching: the request goes upstream with its path as sent.

/// True when `path` has a percent-encoding or a segment starting with "." and so may read
/// differently once normalised; most paths have neither and are matched as they are.
@inline(__always)
func pathNeedsNormalizing(_ path: UnsafeRawBufferPointer) -> Bool {
    var previous: UInt8 = 0
    for byte in path {
        if byte == UInt8(ascii: "%") || (byte == UInt8(ascii: ".") && previous == UInt8(ascii: "/")) { return true }
        previous = byte
    }
    return false
}

/// Writes the normalised `path` into `out` (at least `path.count` bytes) and returns its length.
/// A path that does not start with "/" (asterisk-form) is copied unchanged.
func normalizePath(_ path: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
    // 1. Decode %XX where XX is an unreserved byte: ALPHA / DIGIT / "-" / "." / "_" / "~".
    var n = 0
    var i = 0
    while i < path.count {
        var byte = path[i]
        if byte == UInt8(ascii: "%") && i + 2 < path.count,
           let hi = hexNibble(path[i + 1]), let lo = hexNibble(path[i + 2]), isUnreserved(hi << 4 | lo) {
            byte = hi << 4 | lo
            i += 2
        }
        out[n] = byte
        n += 1
        i += 1
    }
    guard n > 0, out[0] == UInt8(ascii: "/") else { return n }
    // 2. Remove dot segments in place (RFC 3986 5.2.4): the write position never passes the
    // read position.
    var w = 0
    var r = 0
    while r < n {
        // out[r] is "/"; the segment is (r, end).
        var end = r + 1
        while end < n && out[end] != UInt8(ascii: "/") { end += 1 }
        let length = end - r - 1
        let last = end == n
        if length == 1 && out[r + 1] == UInt8(ascii: ".") {
            if last { out[w] = UInt8(ascii: "/"); w += 1 }
        } else if length == 2 && out[r + 1] == UInt8(ascii: ".") && out[r + 2] == UInt8(ascii: ".") {
            while w > 0 {
                w -= 1
                if out[w] == UInt8(ascii: "/") { break }
            }
            if last { out[w] = UInt8(ascii: "/"); w += 1 }
        } else {
            for k in r..<end {
                out[w] = out[k]
                w += 1
            }
        }
        r = end
    }
    if w == 0 {
        out[0] = UInt8(ascii: "/")
        w = 1
    }
    return w
}

@inline(__always)
private func hexNibble(_ b: UInt8) -> UInt8? {
    if isDigit(b) { return b &- UInt8(ascii: "0") }
    let l = b | 0x20
    if l >= UInt8(ascii: "a") && l <= UInt8(ascii: "f") { return l - UInt8(ascii: "a") + 10 }
    return nil
}

@inline(__always)
private func isUnreserved(_ b: UInt8) -> Bool {
    let l = b | 0x20
    return isDigit(b) || (l >= UInt8(ascii: "a") && l <= UInt8(ascii: "z")) || b == UInt8(ascii: "-")
        || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
}

/// The path as prefix matching reads it; for tests and `switchyard check`-style tools.
public func normalizedPath(_ path: String) -> String {
    let bytes = Array(path.utf8)
    var out = [UInt8](repeating: 0, count: bytes.count)
    let n = bytes.withUnsafeBytes { p in out.withUnsafeMutableBytes { normalizePath(p, into: $0) } }
    return String(decoding: out[0..<n], as: UTF8.self)
}
