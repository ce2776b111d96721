// The header part of SigV4's canonical request, over fields given as ranges of one byte buffer:
// the proxy hands over the head it is about to send, so a signed request copies no field name
// or value before writing it into the canonical request.

import Glibc

extension SigV4Canonical {
    /// A header field: its name and value as ranges of a byte buffer.
    public struct FieldRange: Sendable, Equatable {
        public var name: Range<Int>
        public var value: Range<Int>

        public init(name: Range<Int>, value: Range<Int>) {
            self.name = name
            self.value = value
        }
    }

    /// `fields` laid end to end in one buffer, with their ranges in it.
    static func laidEndToEnd(_ fields: [(name: [UInt8], value: [UInt8])]) -> (bytes: [UInt8], fields: [FieldRange]) {
        var bytes: [UInt8] = []
        var ranges: [FieldRange] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.name.count + $1.value.count })
        ranges.reserveCapacity(fields.count)
        for f in fields {
            let nameStart = bytes.count
            bytes += f.name
            let valueStart = bytes.count
            bytes += f.value
            ranges.append(FieldRange(name: nameStart..<valueStart, value: valueStart..<bytes.count))
        }
        return (bytes, ranges)
    }

    /// The canonical header block ("name:value\n" per name, sorted) and the signed-headers list
    /// ("a;b;c"). Names are lowercased; a value is trimmed and each run of whitespace in it
    /// (folded lines included) becomes one space; the values of a repeated name join with ",".
    public static func headers(_ fields: [(name: [UInt8], value: [UInt8])]) -> (canonical: [UInt8], signed: [UInt8]) {
        let (bytes, ranges) = laidEndToEnd(fields)
        var canonical: [UInt8] = []
        var signed: [UInt8] = []
        var scratch = HeaderScratch()
        canonical.reserveCapacity(bytes.count + 2 * fields.count)
        bytes.withUnsafeBufferPointer { appendHeaders(ranges, in: $0, canonical: &canonical, signed: &signed, scratch: &scratch) }
        return (canonical, signed)
    }

    /// Scratch space of `appendHeaders`, kept from request to request by its owner.
    struct HeaderScratch {
        /// Field indices, sorted by name.
        var order: [Int] = []
        /// Every name lowercased, laid end to end; field i's is `starts[i]..<starts[i + 1]`.
        var names: [UInt8] = []
        var starts: [Int] = []

        init() {
            order.reserveCapacity(32)
            names.reserveCapacity(512)
            starts.reserveCapacity(33)
        }
    }

    /// `headers` of fields in `bytes`, appended to `canonical` and `signed`. Names are lowercased
    /// once, then sorted and compared as plain bytes.
    static func appendHeaders(_ fields: [FieldRange], in b: UnsafeBufferPointer<UInt8>, canonical: inout [UInt8], signed: inout [UInt8],
                              scratch: inout HeaderScratch) {
        scratch.names.removeAll(keepingCapacity: true)
        scratch.starts.removeAll(keepingCapacity: true)
        scratch.order.removeAll(keepingCapacity: true)
        for f in fields {
            scratch.starts.append(scratch.names.count)
            appendLowercased(UnsafeBufferPointer(rebasing: b[f.name]), to: &scratch.names)
        }
        scratch.starts.append(scratch.names.count)
        scratch.order += fields.indices
        scratch.names.withUnsafeBufferPointer { names in
            scratch.starts.withUnsafeBufferPointer { starts in
                @inline(__always) func name(_ i: Int) -> UnsafeBufferPointer<UInt8> {
                    UnsafeBufferPointer(rebasing: names[starts[i]..<starts[i + 1]])
                }
                scratch.order.withUnsafeMutableBufferPointer { order in
                    // Sorted by name, stably: a repeated name's values keep their order.
                    // Insertion sort: a request has a handful of fields, and it is stable as it is.
                    for i in order.indices.dropFirst() {
                        let moving = order[i]
                        var j = i
                        while j > 0 && compare(name(order[j - 1]), name(moving)) > 0 {
                            order[j] = order[j - 1]
                            j -= 1
                        }
                        order[j] = moving
                    }
                }
                // Written in place: the header block is at most every name, value, ":" and "\n"
                // (trimming only shortens), the signed list every name and ";".
                let valueBytes = fields.reduce(0) { $0 + $1.value.count }
                let canonicalStart = canonical.count
                let signedStart = signed.count
                canonical.append(contentsOf: repeatElement(0, count: names.count + valueBytes + 2 * fields.count))
                signed.append(contentsOf: repeatElement(0, count: names.count + fields.count))
                var c = canonicalStart
                var n = signedStart
                canonical.withUnsafeMutableBufferPointer { cp in
                    signed.withUnsafeMutableBufferPointer { sp in
                        for (i, f) in scratch.order.enumerated() {
                            let nm = name(f)
                            if i > 0 && compare(name(scratch.order[i - 1]), nm) == 0 {
                                cp[c - 1] = UInt8(ascii: ",")   // the previous value's "\n"
                            } else {
                                if i > 0 {
                                    sp[n] = UInt8(ascii: ";")
                                    n += 1
                                }
                                if let p = nm.baseAddress, nm.count > 0 {
                                    (sp.baseAddress! + n).update(from: p, count: nm.count)
                                    (cp.baseAddress! + c).update(from: p, count: nm.count)
                                }
                                n += nm.count
                                c += nm.count
                                cp[c] = UInt8(ascii: ":")
                                c += 1
                            }
                            c += writeTrimmedCollapsed(UnsafeBufferPointer(rebasing: b[fields[f].value]), to: cp.baseAddress! + c)
                            cp[c] = UInt8(ascii: "\n")
                            c += 1
                        }
                    }
                }
                canonical.removeLast(canonical.count - c)
                signed.removeLast(signed.count - n)
            }
        }
    }

    /// The byte order of `a` and `b` (negative, zero, positive), as `lexicographicallyPrecedes`.
    static func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    /// `bytes` appended in one copy, then lowercased in place.
    static func appendLowercased(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let start = out.count
        out += bytes
        out.withUnsafeMutableBufferPointer { p in
            for i in start..<p.count { p[i] = lowercased(p[i]) }
        }
    }

    @inline(__always)
    public static func lowercasedASCII(_ b: UInt8) -> UInt8 { lowercased(b) }

    @inline(__always)
    static func lowercased(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n")
    }

    /// `value` trimmed, each inner run of whitespace one space, written at `out` (room for
    /// `value.count` bytes): how many bytes it took.
    static func writeTrimmedCollapsed(_ value: UnsafeBufferPointer<UInt8>, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var first = 0
        var end = value.count
        while first < end && isWhitespace(value[first]) { first += 1 }
        while end > first && isWhitespace(value[end - 1]) { end -= 1 }
        // Most values have nothing to collapse inside: copied in one piece.
        var plain = true
        var previousSpace = false
        for i in first..<end {
            let b = value[i]
            if b > UInt8(ascii: " ") {
                previousSpace = false
                continue
            }
            let space = b == UInt8(ascii: " ")
            if (space && previousSpace) || (!space && isWhitespace(b)) {
                plain = false
                break
            }
            previousSpace = space
        }
        if plain {
            if end > first { out.update(from: value.baseAddress! + first, count: end - first) }
            return end - first
        }
        var n = 0
        var pendingSpace = false
        for i in first..<end {
            let b = value[i]
            if isWhitespace(b) {
                pendingSpace = true
                continue
            }
            if pendingSpace {
                out[n] = UInt8(ascii: " ")
                n += 1
            }
            pendingSpace = false
            out[n] = b
            n += 1
        }
        return n
    }
}
