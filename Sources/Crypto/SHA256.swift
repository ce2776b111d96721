// SHA-256 over OpenSSL, for request signing (SigV4 hashes the canonical request and the body),
// and HMAC-SHA256 built on it. The digest is fetched once: OpenSSL 3 looks an algorithm up by
// name on every EVP_Digest or HMAC call that is handed the built-in one, which measured at more
// than half of a signed request's hashing cost.
internal import COpenSSL

public enum SHA256 {
    /// Bytes in one digest.
    public static let byteCount = 32
    /// Bytes in one block (HMAC pads its key to it).
    static let blockSize = 64

    /// Fetched once; an EVP_MD is immutable and shared between threads.
    nonisolated(unsafe) private static let md: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { preconditionFailure("OpenSSL has no SHA256") }
        return md
    }()

    /// SHA-256 of the concatenation of `parts`.
    public static func digest(_ parts: UnsafeRawBufferPointer...) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("OpenSSL: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var length: UInt32 = 0
        var ok = EVP_DigestInit_ex2(ctx, md, nil) == 1
        for p in parts where p.count > 0 { ok = ok && EVP_DigestUpdate(ctx, p.baseAddress, p.count) == 1 }
        ok = ok && out.withUnsafeMutableBytes { EVP_DigestFinal_ex(ctx, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length) } == 1
        // Only an OpenSSL internal failure (out of memory) gets here; a wrong hash would sign
        // the wrong body, so stop rather than continue.
        precondition(ok && length == UInt32(byteCount), "OpenSSL SHA-256 failed")
        return out
    }

    public static func digest(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { digest($0) }
    }
}

extension HMACSHA256 {
    /// HMAC-SHA256(key, message) (RFC 2104) as a new array, over the fetched digest.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var block = key.count > SHA256.blockSize ? SHA256.digest(key) : key
        block += repeatElement(0, count: SHA256.blockSize - block.count)
        let inner = block.map { $0 ^ 0x36 }
        let outer = block.map { $0 ^ 0x5c }
        let innerHash = inner.withUnsafeBytes { i in message.withUnsafeBytes { SHA256.digest(i, $0) } }
        return outer.withUnsafeBytes { o in innerHash.withUnsafeBytes { SHA256.digest(o, $0) } }
    }
}
