// Client addresses and the CIDR lists that decide whom Switchyard trusts (override and preview
// headers, forwarding headers). Lists are parsed once, when the snapshot is built, into masked
// 128-bit prefixes; a request costs one parse of its peer's address and a few AND-compares.

/// A peer address as 128 bits, IPv4 mapped into `::ffff:0:0/96`, or unknown (a caller that did
/// not say where the request came from).
public struct ClientAddress: Sendable, Equatable {
    public var high: UInt64
    public var low: UInt64
    public var known: Bool

    public static let unknown = ClientAddress(high: 0, low: 0, known: false)

    init(high: UInt64, low: UInt64, known: Bool = true) {
        self.high = high
        self.low = low
        self.known = known
    }

    /// Parses a numeric address as the kernel reports a peer: `203.0.113.7`, `2001:db8::1`,
    /// `::ffff:203.0.113.7`, optionally in brackets or with a `%zone`. Anything else is unknown.
    public init(text: UnsafeRawBufferPointer) {
        self = parseAddress(text).map { ClientAddress(high: $0.high, low: $0.low) } ?? .unknown
    }

    public init(text: [UInt8]) {
        self = text.withUnsafeBytes { ClientAddress(text: $0) }
    }

    public init?(_ text: String) {
        var copy = text
        guard let parsed = copy.withUTF8({ parseAddress(UnsafeRawBufferPointer($0)) }) else { return nil }
        self.init(high: parsed.high, low: parsed.low)
    }
}

/// A list of CIDR prefixes, IPv4 (`10.0.0.0/8`) and IPv6 (`::1/128`). A list holding a /0 of
/// either family trusts every client, including one whose address was not supplied.
public struct AddressSet: Sendable, Equatable {
    struct Prefix: Sendable, Equatable {
        var high: UInt64, low: UInt64, maskHigh: UInt64, maskLow: UInt64
    }

    var prefixes: [Prefix]
    public private(set) var matchesEveryone: Bool

    public static let nobody = AddressSet(prefixes: [], matchesEveryone: false)

    init(prefixes: [Prefix], matchesEveryone: Bool) {
        self.prefixes = prefixes
        self.matchesEveryone = matchesEveryone
    }

    /// Parses `cidrs`; returns the first entry that is not `ADDRESS/BITS` (a bare address means
    /// the whole address: /32 or /128) as the error.
    public static func parse(_ cidrs: [String]) -> Result<AddressSet, CIDRError> {
        var set = AddressSet.nobody
        for text in cidrs {
            guard let prefix = parseCIDR(text) else { return .failure(CIDRError(entry: text)) }
            if prefix.bits == 0 { set.matchesEveryone = true }
            set.prefixes.append(prefix.prefix)
        }
        return .success(set)
    }

    @inline(__always)
    public func contains(_ address: ClientAddress) -> Bool {
        if matchesEveryone { return true }
        guard address.known else { return false }
        for p in prefixes where address.high & p.maskHigh == p.high && address.low & p.maskLow == p.low {
            return true
        }
        return false
    }
}

public struct CIDRError: Error, Sendable, Equatable {
    public var entry: String
}

private func parseCIDR(_ text: String) -> (prefix: AddressSet.Prefix, bits: Int)? {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count <= 2, let address = ClientAddress(String(parts[0])), !parts[0].hasPrefix("[") else { return nil }
    let mapped = address.high == 0 && address.low >> 32 == 0xffff && !parts[0].contains(":")
    let width = mapped ? 32 : 128
    var bits = width
    if parts.count == 2 {
        guard let n = Int(parts[1]), n >= 0, n <= width, parts[1].allSatisfy(\.isASCII), parts[1].first != "+" else { return nil }
        bits = n
    }
    let total = mapped ? 96 + bits : bits
    let maskHigh: UInt64 = total >= 64 ? ~0 : (total == 0 ? 0 : ~0 << UInt64(64 - total))
    let maskLow: UInt64 = total <= 64 ? 0 : (total == 128 ? ~0 : ~0 << UInt64(128 - total))
    // A host part with bits set ("10.0.0.1/8") is taken as its network, like most tools do.
    let prefix = AddressSet.Prefix(high: address.high & maskHigh, low: address.low & maskLow,
                                   maskHigh: maskHigh, maskLow: maskLow)
    return (prefix, bits)
}

/// IPv4 dotted quad, or IPv6 with at most one `::` and an optional trailing dotted quad.
private func parseAddress(_ text: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64)? {
    var start = 0
    var end = text.count
    if end >= 2 && text[0] == UInt8(ascii: "[") && text[end - 1] == UInt8(ascii: "]") {
        start = 1
        end -= 1
    }
    var i = start
    while i < end && text[i] != UInt8(ascii: "%") { i += 1 }
    end = i
    guard end > start else { return nil }
    var hasColon = false
    for k in start..<end where text[k] == UInt8(ascii: ":") { hasColon = true }
    if !hasColon {
        guard let v4 = parseIPv4(text, start, end) else { return nil }
        return (0, 0xffff_0000_0000 | UInt64(v4))
    }
    return parseIPv6(text, start, end)
}

private func parseIPv4(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32? {
    var value: UInt32 = 0
    var octets = 0
    var i = start
    while octets < 4 {
        var octet: UInt32 = 0
        var digits = 0
        while i < end, isDigit(text[i]) {
            octet = octet * 10 + UInt32(text[i] &- UInt8(ascii: "0"))
            digits += 1
            i += 1
            if digits > 3 { return nil }
        }
        // No leading zeros: "010" reads as octal in some parsers and decimal in others.
        guard digits > 0, octet <= 255, digits == 1 || text[i - digits] != UInt8(ascii: "0") else { return nil }
        value = value << 8 | octet
        octets += 1
        if octets < 4 {
            guard i < end, text[i] == UInt8(ascii: ".") else { return nil }
            i += 1
        }
    }
    return i == end ? value : nil
}

private func parseIPv6(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (high: UInt64, low: UInt64)? {
    // On the stack: this runs per request.
    withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 8) { groups in
        groups.initialize(repeating: 0)
        return parseIPv6(text, start, end, groups)
    }
}

private func parseIPv6(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                       _ groups: UnsafeMutableBufferPointer<UInt16>) -> (high: UInt64, low: UInt64)? {
    var count = 0
    var gap = -1
    var i = start
    if end - start >= 2 && text[start] == UInt8(ascii: ":") && text[start + 1] == UInt8(ascii: ":") {
        gap = 0
        i += 2
    } else if text[start] == UInt8(ascii: ":") {
        return nil
    }
    while i < end {
        // A trailing dotted quad fills the last two groups.
        var j = i
        while j < end && text[j] != UInt8(ascii: ":") && text[j] != UInt8(ascii: ".") { j += 1 }
        if j < end && text[j] == UInt8(ascii: ".") {
            guard count <= 6, let v4 = parseIPv4(text, i, end) else { return nil }
            groups[count] = UInt16(v4 >> 16)
            groups[count + 1] = UInt16(v4 & 0xffff)
            count += 2
            i = end
            break
        }
        guard j > i, j - i <= 4, count < 8 else { return nil }
        var group: UInt16 = 0
        for k in i..<j {
            guard let v = hexDigitValue(text[k]) else { return nil }
            group = group << 4 | UInt16(v)
        }
        groups[count] = group
        count += 1
        i = j
        if i == end { break }
        i += 1   // the colon
        if i < end && text[i] == UInt8(ascii: ":") {
            guard gap < 0 else { return nil }
            gap = count
            i += 1
        } else if i == end {
            return nil   // a single trailing colon
        }
    }
    if gap >= 0 {
        guard count < 8 else { return nil }
        let tail = count - gap
        var k = tail - 1
        while k >= 0 {
            groups[8 - tail + k] = groups[gap + k]
            k -= 1
        }
        for z in gap..<(8 - tail) { groups[z] = 0 }
    } else if count != 8 {
        return nil
    }
    var high: UInt64 = 0
    var low: UInt64 = 0
    for k in 0..<4 { high = high << 16 | UInt64(groups[k]) }
    for k in 4..<8 { low = low << 16 | UInt64(groups[k]) }
    return (high, low)
}

@inline(__always)
private func hexDigitValue(_ b: UInt8) -> UInt8? {
    if isDigit(b) { return b &- UInt8(ascii: "0") }
    let l = b | 0x20
    if l >= UInt8(ascii: "a") && l <= UInt8(ascii: "f") { return l - UInt8(ascii: "a") + 10 }
    return nil
}
