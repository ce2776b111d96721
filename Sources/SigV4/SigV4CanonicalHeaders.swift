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
        var scratch = HeaderScratch()
        var canonical = [UInt8](repeating: 0, count: maxHeaderBytes(ranges))
        var signed = [UInt8](repeating: 0, count: maxHeaderBytes(ranges))
        let n = bytes.withUnsafeBufferPointer { b in
            canonical.withUnsafeMutableBufferPointer { c in
                signed.withUnsafeMutableBufferPointer { writeHeaders(ranges, in: b, canonical: c.baseAddress!, signed: $0.baseAddress!, scratch: &scratch) }
            }
        }
        return (Array(canonical[..<n.canonical]), Array(signed[..<n.signed]))
    }

    /// Bytes the header block of `fields` takes at most (trimming only shortens); their signed
    /// list takes fewer.
    static func maxHeaderBytes(_ fields: [FieldRange]) -> Int {
        var n = 0
        for f in fields { n += f.name.count + f.value.count + 2 }
        return n
    }

    /// Scratch space of `writeHeaders`, kept from request to request by its owner: it only grows,
    /// and is written in place (no append per name).
    struct HeaderScratch {
        /// Field indices, sorted by name.
        var order: [Int] = []
        /// Every name lowercased, laid end to end; field i's is `starts[i]..<starts[i + 1]`.
        var names: [UInt8] = []
        var starts: [Int] = []

        init() {
            ensure(fields: 32, nameBytes: 512)
        }

        mutating func ensure(fields: Int, nameBytes: Int) {
            if order.count < fields { order = [Int](repeating: 0, count: fields) }
            if starts.count < fields + 1 { starts = [Int](repeating: 0, count: fields + 1) }
            if names.count < nameBytes { names = [UInt8](repeating: 0, count: nameBytes) }
        }
    }

    /// `headers` of fields in `bytes`, written at `canonical` (room for `maxHeaderBytes`) and
    /// `signed` (as much): how many bytes each took. Names are lowercased once, then sorted and
    /// compared as plain bytes.
    static func writeHeaders(_ fields: [FieldRange], in b: UnsafeBufferPointer<UInt8>, canonical cp: UnsafeMutablePointer<UInt8>,
                             signed sp: UnsafeMutablePointer<UInt8>, scratch: inout HeaderScratch) -> (canonical: Int, signed: Int) {
        var nameBytes = 0
        for f in fields { nameBytes += f.name.count }
        scratch.ensure(fields: fields.count, nameBytes: nameBytes)
        return scratch.names.withUnsafeMutableBufferPointer { names in
            scratch.starts.withUnsafeMutableBufferPointer { starts in
                scratch.order.withUnsafeMutableBufferPointer { order in
                    var at = 0
                    for (i, f) in fields.enumerated() {
                        starts[i] = at
                        at += writeLowercased(UnsafeBufferPointer(rebasing: b[f.name]), to: names.baseAddress! + at)
                        order[i] = i
                    }
                    starts[fields.count] = at
                    @inline(__always) func name(_ i: Int) -> UnsafeBufferPointer<UInt8> {
                        UnsafeBufferPointer(start: names.baseAddress! + starts[i], count: starts[i + 1] - starts[i])
                    }
                    // Sorted by name, stably: a repeated name's values keep their order.
                    // Insertion sort: a request has a handful of fields, and it is stable as it is.
                    for i in 1..<max(1, fields.count) {
                        let moving = order[i]
                        var j = i
                        while j > 0 && compare(name(order[j - 1]), name(moving)) > 0 {
                            order[j] = order[j - 1]
                            j -= 1
                        }
                        order[j] = moving
                    }
                    var c = 0
                    var n = 0
                    for i in 0..<fields.count {
                        let f = order[i]
                        let nm = name(f)
                        if i > 0 && compare(name(order[i - 1]), nm) == 0 {
                            cp[c - 1] = UInt8(ascii: ",")   // the previous value's "\n"
                        } else {
                            if i > 0 {
                                sp[n] = UInt8(ascii: ";")
                                n += 1
                            }
                            if let p = nm.baseAddress, nm.count > 0 {
                                (sp + n).update(from: p, count: nm.count)
                                (cp + c).update(from: p, count: nm.count)
                            }
                            n += nm.count
                            c += nm.count
                            cp[c] = UInt8(ascii: ":")
                            c += 1
                        }
                        c += writeTrimmedCollapsed(UnsafeBufferPointer(rebasing: b[fields[f].value]), to: cp + c)
                        cp[c] = UInt8(ascii: "\n")
                        c += 1
                    }
                    return (c, n)
                }
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

    /// `bytes` with ASCII letters lowercased, written at `out`: eight bytes at a time, then the
    /// rest one by one. How many bytes it took (all of them).
    @inline(__always)
    static func writeLowercased(_ bytes: UnsafeBufferPointer<UInt8>, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var i = 0
        while bytes.count - i >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self))
            let low = word & 0x7F7F_7F7F_7F7F_7F7F
            // High bit of each byte: at least "A", above "Z", and below 0x80 to start with.
            let upper = (low &+ 0x3F3F_3F3F_3F3F_3F3F) & ~(low &+ 0x2525_2525_2525_2525) & ~word & 0x8080_8080_8080_8080
            UnsafeMutableRawPointer(out + i).storeBytes(of: (word | upper >> 2).littleEndian, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            out[i] = lowercased(bytes[i])
            i += 1
        }
        return bytes.count
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
        // Most values have nothing to collapse inside: copied in one piece. Eight bytes at a time
        // while none of them is a space or a control byte (a hash, a date, a token, a host).
        var plain = true
        var previousSpace = false
        var i = first
        while end - i >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(value.baseAddress! + i).loadUnaligned(as: UInt64.self))
            if (word &- 0x2121_2121_2121_2121) & ~word & 0x8080_8080_8080_8080 != 0 { break }   // a byte below "!"
            previousSpace = false
            i += 8
        }
        for j in i..<end {
            let b = value[j]
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
