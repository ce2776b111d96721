// Session-ticket keys shared by every worker and every listener, so a ticket issued by one
// worker resumes on another, and rotated: a new key encrypts every `rotationSeconds`, the one
// before it still decrypts (a ticket lives at most two periods), older ones are forgotten.
internal import COpenSSL
import Synchronization
import Glibc

final class TicketKeys: Sendable {
    struct Key: Sendable {
        var name: [UInt8]      // 16 bytes, sent in the ticket
        var aes: [UInt8]       // AES-256-CBC
        var hmac: [UInt8]      // HMAC-SHA256
        var createdSeconds: UInt64
    }

    static let shared = TicketKeys()
    /// How long one key encrypts new tickets.
    static let rotationSeconds: UInt64 = 3600

    private struct Ring { var current: Key; var previous: Key? }
    private let ring: Mutex<Ring>

    private init() {
        ring = Mutex(Ring(current: TicketKeys.make(now: TicketKeys.nowSeconds()), previous: nil))
    }

    static func nowSeconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec)
    }

    private static func make(now: UInt64) -> Key {
        func random(_ n: Int) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: n)
            let ok = b.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(n)) }
            // Predictable ticket keys would let anyone decrypt resumed sessions.
            precondition(ok == 1, "RAND_bytes failed")
            return b
        }
        return Key(name: random(16), aes: random(32), hmac: random(32), createdSeconds: now)
    }

    /// The key that encrypts new tickets (rotated when due).
    func current(now: UInt64 = TicketKeys.nowSeconds()) -> Key {
        ring.withLock { r in
            if now >= r.current.createdSeconds + TicketKeys.rotationSeconds {
                r.previous = r.current
                r.current = TicketKeys.make(now: now)
            }
            return r.current
        }
    }

    /// The key a ticket names, and whether it is the current one (else the ticket is renewed).
    func find(name: UnsafeRawBufferPointer) -> (Key, isCurrent: Bool)? {
        ring.withLock { r in
            if r.current.name.elementsEqual(name) { return (r.current, true) }
            if let p = r.previous, p.name.elementsEqual(name) { return (p, false) }
            return nil
        }
    }
}

/// OpenSSL's ticket key callback: encrypt (enc = 1) with the current key; decrypt with the key
/// the ticket names (2: valid, issue a fresh ticket), 0 = unknown key (full handshake).
let ticketKeyCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
                                      OpaquePointer?, OpaquePointer?, Int32) -> Int32 = { _, keyName, iv, cipherCtx, macCtx, enc in
    guard let keyName, let iv else { return -1 }
    if enc == 1 {
        let key = TicketKeys.shared.current()
        key.name.withUnsafeBytes { keyName.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 16) }
        guard RAND_bytes(iv, 16) == 1 else { return -1 }
        let ok = key.aes.withUnsafeBufferPointer { EVP_EncryptInit_ex(cipherCtx, EVP_aes_256_cbc(), nil, $0.baseAddress, iv) }
        guard ok == 1 else { return -1 }
        let macOK = key.hmac.withUnsafeBufferPointer { sy_ticket_mac_init(macCtx, $0.baseAddress, 32) }
        return macOK == 1 ? 1 : -1
    }
    guard let (key, isCurrent) = TicketKeys.shared.find(name: UnsafeRawBufferPointer(start: keyName, count: 16)) else { return 0 }
    let macOK = key.hmac.withUnsafeBufferPointer { sy_ticket_mac_init(macCtx, $0.baseAddress, 32) }
    guard macOK == 1 else { return -1 }
    let ok = key.aes.withUnsafeBufferPointer { EVP_DecryptInit_ex(cipherCtx, EVP_aes_256_cbc(), nil, $0.baseAddress, iv) }
    guard ok == 1 else { return -1 }
    // Always "renew": a client that resumed gets a fresh ticket (TLS 1.3 tickets are meant for
    // one use, and clients such as wrk offer the newest they hold), and tickets under the
    // previous key move to the current one.
    _ = isCurrent
    return 2
}
