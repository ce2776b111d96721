// SHA-256 over OpenSSL, for request signing (SigV4 hashes the canonical request and the body).
internal import COpenSSL

public enum SHA256 {
    /// Bytes in one digest.
    public static let byteCount = 32

    /// SHA-256 of `message`.
    public static func digest(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let empty: UInt8 = 0
        let ok = withUnsafePointer(to: empty) { emptyPointer in
            out.withUnsafeMutableBytes { o in
                EVP_Digest(message.baseAddress ?? UnsafeRawPointer(emptyPointer), message.count,
                           o.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, sy_EVP_sha256(), nil)
            }
        }
        // Only an OpenSSL internal failure (out of memory) gets here; a wrong hash would sign
        // the wrong body, so stop rather than continue.
        precondition(ok == 1 && length == UInt32(byteCount), "OpenSSL SHA-256 failed")
        return out
    }

    public static func digest(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { digest($0) }
    }
}

extension HMACSHA256 {
    /// HMAC-SHA256(key, message) as a new array.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        message.withUnsafeBytes { m in out.withUnsafeMutableBytes { mac(key: key, message: m, into: $0) } }
        return out
    }
}
