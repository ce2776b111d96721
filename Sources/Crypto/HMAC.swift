// HMAC-SHA256 over OpenSSL, for signing Switchyard's assignment cookies. Crypto does not import
// Routing: `signer(secret:)` returns a closure that matches Routing's `CookieSigner` by shape.
internal import COpenSSL

public enum HMACSHA256 {
    /// Bytes in one MAC.
    public static let byteCount = 32

    /// Writes HMAC-SHA256(key, message) into the first 32 bytes of `output`.
    public static func mac(key: [UInt8], message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= byteCount, "HMAC-SHA256 output needs 32 bytes")
        precondition(key.count <= Int(Int32.max), "HMAC key too long")
        var length: UInt32 = 0
        // A zero-length buffer may have a nil base address; OpenSSL wants a valid pointer.
        let empty: UInt8 = 0
        let result: UnsafeMutablePointer<UInt8>? = withUnsafePointer(to: empty) { emptyPointer in
            key.withUnsafeBytes { keyBytes in
                HMAC(sy_EVP_sha256(),
                     keyBytes.baseAddress ?? UnsafeRawPointer(emptyPointer), Int32(keyBytes.count),
                     message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyPointer, message.count,
                     output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
            }
        }
        // Only an OpenSSL internal failure (out of memory) gets here; a wrong MAC would let
        // forged cookies through, so stop rather than continue.
        precondition(result != nil && length == UInt32(byteCount), "OpenSSL HMAC-SHA256 failed")
    }

    /// A cookie signer keyed with `secret` (Routing's `CookieSigner`).
    public static func signer(secret: [UInt8]) -> @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void {
        { message, output in mac(key: secret, message: message, into: output) }
    }
}
