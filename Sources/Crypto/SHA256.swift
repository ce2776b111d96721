// SHA-256 over OpenSSL, for request signing (SigV4 hashes the canonical request and the body),
// and HMAC-SHA256 built on it: one-shot forms over SHA256Hasher, which holds the state as a
// plain value (no EVP context, nor the algorithm look-up by name OpenSSL 3 does per EVP call).

public enum SHA256 {
    /// Bytes in one digest.
    public static let byteCount = 32
    /// Bytes in one block (HMAC pads its key to it).
    static let blockSize = 64

    /// SHA-256 of the concatenation of `parts`.
    public static func digest(_ parts: UnsafeRawBufferPointer...) -> [UInt8] {
        var hasher = SHA256Hasher()
        for p in parts { hasher.update(p) }
        return [UInt8](unsafeUninitializedCapacity: byteCount) { out, count in
            hasher.finish(into: UnsafeMutableRawBufferPointer(out))
            count = byteCount
        }
    }

    public static func digest(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { digest($0) }
    }
}

extension HMACSHA256 {
    /// HMAC-SHA256(key, message) (RFC 2104) as a new array.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        let k = HMACSHA256Key(key)
        return [UInt8](unsafeUninitializedCapacity: byteCount) { out, count in
            message.withUnsafeBytes { k.mac($0, into: UnsafeMutableRawBufferPointer(out)) }
            count = byteCount
        }
    }
}
