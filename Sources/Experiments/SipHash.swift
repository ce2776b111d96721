// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash. It turns a sticky key (a user
// id header, which may be personal data) into an experiment unit id that is neither the raw key
// nor recoverable from it without the 128-bit key, and that every instance with the same key
// computes alike. Allocation-free: it reads the bytes where they lie.

public enum SipHash {
    /// SipHash-2-4 of `bytes` under the 128-bit key (k0, k1), k0 holding key bytes 0–7 read
    /// little-endian and k1 bytes 8–15, as in the reference implementation.
    public static func hash(key: (UInt64, UInt64), bytes: UnsafeRawBufferPointer) -> UInt64 {
        var s = State(key: key)
        let whole = bytes.count & ~7
        var at = 0
        while at < whole {
            s.compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
            at += 8
        }
        // The last block: the 0–7 remaining bytes, little-endian, under the length's low byte.
        var last = UInt64(truncatingIfNeeded: bytes.count) << 56
        for i in 0..<(bytes.count - whole) {
            last |= UInt64(bytes[whole + i]) << UInt64(8 * i)
        }
        s.compress(last)
        return s.finish()
    }

    private struct State {
        var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64

        init(key: (UInt64, UInt64)) {
            v0 = key.0 ^ 0x736f_6d65_7073_6575  // "somepseu"
            v1 = key.1 ^ 0x646f_7261_6e64_6f6d  // "dorandom"
            v2 = key.0 ^ 0x6c79_6765_6e65_7261  // "lygenera"
            v3 = key.1 ^ 0x7465_6462_7974_6573  // "tedbytes"
        }

        @inline(__always)
        mutating func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }

        /// Two compression rounds per 8-byte block.
        @inline(__always)
        mutating func compress(_ m: UInt64) {
            v3 ^= m
            round(); round()
            v0 ^= m
        }

        /// Four finalization rounds.
        mutating func finish() -> UInt64 {
            v2 ^= 0xff
            round(); round(); round(); round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
