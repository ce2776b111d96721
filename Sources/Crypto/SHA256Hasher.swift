// An incremental SHA-256 and HMAC-SHA256 with the key's pads absorbed once: plain values over
// OpenSSL's SHA256_CTX, so a signed request hashes with no allocation and a cached key costs
// two struct copies instead of two extra blocks per MAC.
internal import COpenSSL

/// A running SHA-256; copying one forks the hash.
public struct SHA256Hasher {
    private var state = SHA256_CTX()

    public init() {
        // Only fails on a null pointer.
        _ = sy_SHA256_Init(&state)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = sy_SHA256_Update(&state, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Writes the digest into the first 32 bytes of `output`; the hasher is spent.
    public mutating func finish(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= SHA256.byteCount, "SHA-256 output needs 32 bytes")
        _ = sy_SHA256_Final(output.baseAddress!.assumingMemoryBound(to: UInt8.self), &state)
    }
}

/// An HMAC-SHA256 key with its inner and outer pads hashed (RFC 2104).
public struct HMACSHA256Key {
    private var inner = SHA256Hasher()
    private var outer = SHA256Hasher()

    public init(_ key: [UInt8]) {
        var block = key.count > SHA256.blockSize ? SHA256.digest(key) : key
        block += repeatElement(0, count: SHA256.blockSize - block.count)
        inner.update(block.map { $0 ^ 0x36 })
        outer.update(block.map { $0 ^ 0x5c })
    }

    /// This key with `prefix` already hashed: `mac(m)` is then HMAC-SHA256 of `prefix` + `m`. A
    /// prefix that holds for many messages (SigV4's string to sign, up to its last line) is
    /// hashed once; its full blocks are not hashed again per message.
    public mutating func absorb(_ prefix: UnsafeRawBufferPointer) {
        inner.update(prefix)
    }

    /// Writes HMAC-SHA256(key, message) into the first 32 bytes of `output`.
    public func mac(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        var i = inner
        i.update(message)
        withUnsafeTemporaryAllocation(byteCount: SHA256.byteCount, alignment: 1) { innerHash in
            i.finish(into: innerHash)
            var o = outer
            o.update(UnsafeRawBufferPointer(innerHash))
            o.finish(into: output)
        }
    }
}
