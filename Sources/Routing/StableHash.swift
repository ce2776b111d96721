// Hashes and derived randomness that must agree across processes and instances: FNV-1a for
// sticky keys and salt tags, splitmix64 to derive independent draws from one random input.
// Never Swift's `Hasher`, which is seeded per process.

enum FNV1a {
    static let offset64: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime64: UInt64 = 0x0000_0100_0000_01b3
    static let offset32: UInt32 = 0x811c_9dc5
    static let prime32: UInt32 = 0x0100_0193

    @inline(__always)
    static func add64(_ hash: inout UInt64, _ bytes: UnsafeRawBufferPointer) {
        var h = hash
        for byte in bytes {
            h = (h ^ UInt64(byte)) &* prime64
        }
        hash = h
    }

    @inline(__always)
    static func add64(_ hash: inout UInt64, byte: UInt8) {
        hash = (hash ^ UInt64(byte)) &* prime64
    }

    static func hash32(_ bytes: Bytes) -> UInt32 {
        var h = offset32
        for byte in bytes {
            h = (h ^ UInt32(byte)) &* prime32
        }
        return h
    }
}

/// splitmix64 read at an index: draw n of the stream seeded with `seed`, computed directly so
/// each consumer (fresh bucket, mirror i) has its own draw whatever the others used.
enum SplitMix64 {
    static let gamma: UInt64 = 0x9e37_79b9_7f4a_7c15

    @inline(__always)
    static func draw(_ seed: UInt64, _ index: Int) -> UInt64 {
        var z = seed &+ UInt64(truncatingIfNeeded: index &+ 1) &* gamma
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Which draw of `SplitMix64` each consumer uses.
enum Draw {
    static let freshBucket = 0
    /// Mirror i uses draw `firstMirror + i`.
    static let firstMirror = 1
    /// A new experiment unit's id (after every mirror's draw).
    static let unit = 1 + 64
}
