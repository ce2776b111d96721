// The text form of a HyperLogLog sketch, as `show experiment --json` prints it so a fleet's
// sketches can be merged elsewhere. Versioned, in the base64url alphabet (RFC 4648 §5: no '/',
// which JSON writers may escape, and no padding), with a sparse form so a sketch of a few units
// is a few bytes rather than 16 KiB:
//
//   hll1:s:<entries>    sparse: per non-zero register, 4 symbols = 24 bits holding
//                       index << 6 | value, indices strictly increasing
//   hll1:d:<registers>  dense: 16,384 symbols, register i's value (6 bits) as symbol i
//
// Decoding rejects anything else (another version, a stray character, a wrong length, a value
// above 51, unsorted or repeated indices) with nil, never a trap.

extension HyperLogLog {
    static let densePrefix = Array("hll1:d:".utf8)
    static let sparsePrefix = Array("hll1:s:".utf8)
    static let symbolsPerEntry = 4
    /// The longest valid text: every register listed in the sparse form.
    static let longestEncoding = sparsePrefix.count + registerCount * symbolsPerEntry

    /// The sketch as text: sparse while that is shorter than the dense form (under 4,096
    /// non-zero registers, about 4,700 distinct units), dense after.
    public func encoded() -> String {
        let nonZero = registers.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
        var out: [UInt8]
        if nonZero * Self.symbolsPerEntry < Self.registerCount {
            out = Self.sparsePrefix
            out.reserveCapacity(out.count + nonZero * Self.symbolsPerEntry)
            for (index, value) in registers.enumerated() where value != 0 {
                let entry = UInt32(index) << 6 | UInt32(value)
                for shift in stride(from: 18, through: 0, by: -6) {
                    out.append(Self.symbol(UInt8(truncatingIfNeeded: entry >> UInt32(shift) & 63)))
                }
            }
        } else {
            out = Self.densePrefix
            out.reserveCapacity(out.count + Self.registerCount)
            for value in registers { out.append(Self.symbol(value)) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The sketch `encoded` describes, or nil when it is not a valid `encoded()` text.
    public init?(encoded: String) {
        var text = encoded
        guard text.utf8.count <= Self.longestEncoding,
              let registers = text.withUTF8({ Self.decode(UnsafeRawBufferPointer($0)) }) else { return nil }
        self.init(validRegisters: registers)
    }

    private static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        if text.starts(with: densePrefix) {
            return decodeDense(UnsafeRawBufferPointer(rebasing: text[densePrefix.count...]))
        }
        if text.starts(with: sparsePrefix) {
            return decodeSparse(UnsafeRawBufferPointer(rebasing: text[sparsePrefix.count...]))
        }
        return nil
    }

    private static func decodeDense(_ body: UnsafeRawBufferPointer) -> [UInt8]? {
        guard body.count == registerCount else { return nil }
        var registers = [UInt8](repeating: 0, count: registerCount)
        for (i, c) in body.enumerated() {
            guard let value = sextet(c), value <= maxRegister else { return nil }
            registers[i] = value
        }
        return registers
    }

    private static func decodeSparse(_ body: UnsafeRawBufferPointer) -> [UInt8]? {
        guard body.count % symbolsPerEntry == 0 else { return nil }
        var registers = [UInt8](repeating: 0, count: registerCount)
        var next = 0  // the smallest index the next entry may name
        var at = 0
        while at < body.count {
            var entry = 0
            for c in body[at..<at + symbolsPerEntry] {
                guard let bits = sextet(c) else { return nil }
                entry = entry << 6 | Int(bits)
            }
            at += symbolsPerEntry
            let index = entry >> 6
            let value = UInt8(truncatingIfNeeded: entry & 63)
            guard index >= next, index < registerCount, value >= 1, value <= maxRegister else { return nil }
            registers[index] = value
            next = index + 1
        }
        return registers
    }

    /// The base64url symbol for a 6-bit value.
    private static func symbol(_ v: UInt8) -> UInt8 {
        switch v {
        case 0..<26: return UInt8(ascii: "A") + v
        case 26..<52: return UInt8(ascii: "a") + (v - 26)
        case 52..<62: return UInt8(ascii: "0") + (v - 52)
        case 62: return UInt8(ascii: "-")
        default: return UInt8(ascii: "_")
        }
    }

    /// The 6-bit value of a base64url symbol; nil for any other byte.
    private static func sextet(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}
