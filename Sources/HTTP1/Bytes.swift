// Byte-level grammar shared by Switchyard's HTTP/1 parsers: character classes, ASCII case folding
// by arithmetic, list elements, Content-Length values and uri-host syntax.

enum ASCII {
    static let ht: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let equals: UInt8 = 0x3D
    static let question: UInt8 = 0x3F
    static let leftBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let rightBracket: UInt8 = 0x5D
    static let star: UInt8 = 0x2A
    static let hash: UInt8 = 0x23
}

// reg-name characters other than '%' (RFC 3986 unreserved and sub-delims); bit n of low is byte n,
// of high byte 64+n.
private let regNameMaskLow: UInt64 = 0x2BFF_7FD2_0000_0000
private let regNameMaskHigh: UInt64 = 0x47FF_FFFE_87FF_FFFE

@inline(__always)
private func inMask(_ b: UInt8, _ low: UInt64, _ high: UInt64) -> Bool {
    if b < 64 { return (low &>> UInt64(b)) & 1 != 0 }
    if b < 128 { return (high &>> UInt64(b &- 64)) & 1 != 0 }
    return false
}

/// tchar as a byte-indexed table: names are checked one byte per step, and a lookup in constant
/// data beats the two-range mask test there.
private let tokenTable: StaticString = """
    00000000000000000000000000000000\
    01011111001101101111111111000000\
    01111111111111111111111111100011\
    11111111111111111111111111101010\
    00000000000000000000000000000000\
    00000000000000000000000000000000\
    00000000000000000000000000000000\
    00000000000000000000000000000000
    """

@inline(__always)
func isTokenByte(_ b: UInt8) -> Bool { tokenTable.utf8Start[Int(b)] & 1 != 0 }

@inline(__always)
func isRegNameByte(_ b: UInt8) -> Bool { inMask(b, regNameMaskLow, regNameMaskHigh) }

/// field-vchar, SP or HT (RFC 9110 5.5): everything but the controls and DEL.
@inline(__always)
func isFieldByte(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == ASCII.ht }

@inline(__always)
func isOWS(_ b: UInt8) -> Bool { b == ASCII.space || b == ASCII.ht }

@inline(__always)
func isDigit(_ b: UInt8) -> Bool { b &- ASCII.zero < 10 }

/// The value of a hex digit, or nil.
@inline(__always)
func hexValue(_ b: UInt8) -> UInt8? {
    if b &- 0x30 < 10 { return b &- 0x30 }
    let l = b | 0x20
    if l &- 0x61 < 6 { return l &- 0x61 &+ 10 }
    return nil
}

@inlinable @inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b &+ 0x20 : b }

/// Case-insensitive comparison of `a` with `lowercased`, which must already be lowercase ASCII.
@inlinable
public func asciiCaseInsensitiveEquals(_ a: UnsafeRawBufferPointer, _ lowercased: UnsafeRawBufferPointer) -> Bool {
    guard a.count == lowercased.count else { return false }
    var i = 0
    while i < a.count {
        if asciiLower(a[i]) != lowercased[i] { return false }
        i += 1
    }
    return true
}

/// Whether bytes [start, end) equal `literal` (lowercase ASCII) case-insensitively.
@inline(__always)
func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
    let n = literal.utf8CodeUnitCount
    guard end - start == n else { return false }
    let lit = literal.utf8Start
    var i = 0
    while i < n {
        if asciiLower(bytes[start + i]) != lit[i] { return false }
        i += 1
    }
    return true
}

/// Whether bytes [start, start + literal.count) equal `literal` exactly.
@inline(__always)
func equalsExactly(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
    let n = literal.utf8CodeUnitCount
    guard end - start == n else { return false }
    let lit = literal.utf8Start
    var i = 0
    while i < n {
        if bytes[start + i] != lit[i] { return false }
        i += 1
    }
    return true
}

/// Case-insensitive equality of two slices of the same buffer.
@inline(__always)
func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Int, _ aEnd: Int, _ b: Int, _ bEnd: Int) -> Bool {
    guard aEnd - a == bEnd - b else { return false }
    var i = 0
    while a + i < aEnd {
        if asciiLower(bytes[a + i]) != asciiLower(bytes[b + i]) { return false }
        i += 1
    }
    return true
}

@inline(__always)
func isToken(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
    guard start < end else { return false }
    var i = start
    while i < end {
        if !isTokenByte(bytes[i]) { return false }
        i += 1
    }
    return true
}

/// The non-empty elements of a comma-separated list (RFC 9110 5.6.1), each trimmed of OWS.
/// Empty elements are skipped, as recipients must accept them.
struct ListElements {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
    }

    mutating func next() -> (start: Int, end: Int)? {
        while position < end {
            var s = position
            var e = s
            while e < end && bytes[e] != ASCII.comma { e += 1 }
            position = e + 1
            while s < e && isOWS(bytes[s]) { s += 1 }
            while e > s && isOWS(bytes[e - 1]) { e -= 1 }
            if s < e { return (s, e) }
        }
        return nil
    }
}

enum ContentLengthValue {
    case value(Int64)
    case invalid
    case conflicting
}

/// Parses a Content-Length value. A list of identical values counts as one (RFC 9110 8.6); empty
/// elements, signs, inner spaces and anything over Int64.max are refused rather than guessed at,
/// because a proxy that reads a length differently from its upstream lets requests be smuggled.
func parseContentLength(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> ContentLengthValue {
    var result: Int64 = -1
    var i = start
    while true {
        while i < end && isOWS(bytes[i]) { i += 1 }
        var value: Int64 = 0
        var digits = 0
        while i < end, isDigit(bytes[i]) {
            let d = Int64(bytes[i] &- ASCII.zero)
            if value > (Int64.max - d) / 10 { return .invalid }
            value = value * 10 + d
            digits += 1
            i += 1
        }
        if digits == 0 { return .invalid }
        while i < end && isOWS(bytes[i]) { i += 1 }
        if result >= 0 && result != value { return .conflicting }
        result = value
        if i == end { return .value(result) }
        if bytes[i] != ASCII.comma { return .invalid }
        i += 1
    }
}

/// uri-host [":" port] (RFC 3986): reg-name or IPv4 (the same characters), or an IPv6 literal in
/// brackets; the port is 1 to 5 digits up to 65535. An empty string is valid only when `allowEmpty`
/// (a Host header may be empty when the target has no authority, RFC 9112 3.2).
func isValidAuthority(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                      allowEmpty: Bool, requirePort: Bool) -> Bool {
    if start == end { return allowEmpty && !requirePort }
    var i = start
    if bytes[i] == ASCII.leftBracket {
        i += 1
        var colons = 0
        let literalStart = i
        while i < end, bytes[i] != ASCII.rightBracket {
            let b = bytes[i]
            if b == ASCII.colon {
                colons += 1
            } else if b != ASCII.dot && hexValue(b) == nil {
                return false
            }
            i += 1
        }
        if i == end || i == literalStart || colons < 2 { return false }
        i += 1
    } else {
        while i < end, bytes[i] != ASCII.colon {
            let b = bytes[i]
            if b == ASCII.percent {
                guard i + 2 < end, hexValue(bytes[i + 1]) != nil, hexValue(bytes[i + 2]) != nil else { return false }
                i += 3
                continue
            }
            if !isRegNameByte(b) { return false }
            i += 1
        }
        if i == start { return false }
    }
    if i == end { return !requirePort }
    guard bytes[i] == ASCII.colon else { return false }
    i += 1
    let digitsStart = i
    var port = 0
    while i < end, isDigit(bytes[i]) {
        port = port * 10 + Int(bytes[i] &- ASCII.zero)
        i += 1
        if i - digitsStart > 5 { return false }
    }
    return i == end && i > digitsStart && port <= 65535
}

/// Index of the first byte in [from, limit) outside 0x20...0x7E, or a position within 8 bytes of
/// limit from which the caller's byte loop goes on. Header values are almost all printable ASCII,
/// so they are checked eight bytes per step and the byte loop sees only the exceptions.
@inline(__always)
func skipPrintable(_ bytes: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int {
    var i = from
    guard let base = bytes.baseAddress else { return i }
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    while i &+ 8 <= limit {
        let x = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let y = x ^ (ones &* 0x7F)
        // Flags bytes below 0x20, DEL, and 0x80 and above. The borrow tricks may also flag bytes
        // after a true hit, never before one, so the lowest flag is the first such byte.
        let flagged = ((x &- ones &* 0x20) & ~x | (y &- ones) & ~y | x) & highs
        if flagged != 0 { return i &+ flagged.trailingZeroBitCount &>> 3 }
        i &+= 8
    }
    return i
}
