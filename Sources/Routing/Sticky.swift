// Sticky assignment: where a request's bucket comes from when no pin applies (sticky key, then
// the assignment cookie, then a fresh random bucket), the versioned and optionally signed
// cookie format `1.<bucket>.<saltTag>[.<sig>]`, and the Set-Cookie line that stores it.
// A split that runs an experiment issues version 2, `2.<bucket>.<saltTag>.<unit>[.<sig>]`: the
// same bucket and signature plus the user's unit id (16 hex digits). The signature covers the
// bucket and salt only: a client can always become a new unit by dropping the cookie, so signing
// the id would cost an HMAC per new cookie and protect nothing. Both versions are read everywhere.
import Experiments
//
// A signed cookie's signature depends only on its bucket and salt, so the 10,000 possible
// signatures are computed when the sticky is built: the request path compares against the
// table and never calls the signer (an HMAC costs microseconds and allocates in OpenSSL).

extension Sticky {
    /// Longest cookie name `writeSetCookie` is sized for; the snapshot builder rejects longer.
    public static let maxCookieNameBytes = 64
    /// Bytes of the MAC a `CookieSigner` writes (HMAC-SHA256).
    public static let signatureBytes = 32
    /// Longest cookie value: `2.` + 4 digits + `.` + 8 hex + `.` + 16 hex + `.` + 43 base64url.
    public static let maxCookieValueBytes = maxUnsignedBytes + unitBytes + 1 + encodedSignatureBytes
    /// Enough for any `writeSetCookie` line (name up to `maxCookieNameBytes`, any Max-Age).
    public static let maxSetCookieBytes = setCookieFixedBytes + maxCookieNameBytes + maxCookieValueBytes
        + maxDecimalBytes + secureBytes

    static func saltTag(_ salt: Bytes) -> UInt32 { FNV1a.hash32(salt) }

    /// The bucket a sticky key maps to: FNV-1a 64 over the salt, a 0x00 byte and the key, mod
    /// 10,000. The same on every instance and across restarts.
    public func stableBucket(key: UnsafeRawBufferPointer) -> Int32 {
        salt.withUnsafeBytes { Routing.stableBucket(salt: $0, key: key) }
    }

    /// The bucket stored in an assignment cookie value, or nil when the value is not exactly
    /// what this sticky issues: version 1, a bucket in 0...9999 without sign or leading zeros,
    /// this salt's tag, and a valid signature when (and only when) a signer is configured.
    public func parseCookie(_ value: UnsafeRawBufferPointer) -> Int32? {
        var unit: UInt64 = 0
        return parseCookie(value, unit: &unit)
    }

    /// Like `parseCookie`, and `unit` is the version-2 cookie's unit id (0 for version 1).
    public func parseCookie(_ value: UnsafeRawBufferPointer, unit: inout UInt64) -> Int32? {
        withExtendedLifetime(signatures) {
            parseAssignmentCookie(value, saltTag: saltTag, signatures: signatures?.base, unit: &unit)
        }
    }

    /// Writes the cookie value for `bucket` (signed when a signer is configured) into `out`.
    /// Returns the bytes written, or 0 when `bucket` is out of range or `out` is too small
    /// (`maxCookieValueBytes` always suffices).
    public func writeCookieValue(bucket: Int32, into out: UnsafeMutableRawBufferPointer) -> Int {
        withExtendedLifetime(signatures) {
            let signed = signatures?.base
            guard bucket >= 0, bucket < Split.buckets, out.count >= cookieValueCount(bucket, unit: 0, signed: signed != nil) else {
                return 0
            }
            return writeAssignmentCookie(bucket, saltTag: saltTag, unit: 0, signatures: signed, into: out)
        }
    }

    /// Writes `Set-Cookie: NAME=VALUE; Path=/; Max-Age=N; HttpOnly; SameSite=Lax[; Secure]\r\n`
    /// into `out` without allocating. Returns the bytes written, or 0 when `bucket` is out of
    /// range or `out` is too small (`maxSetCookieBytes` suffices for names the builder accepts).
    public func writeSetCookie(bucket: Int32, secure: Bool, into out: UnsafeMutableRawBufferPointer) -> Int {
        withExtendedLifetime(signatures) {
            cookieName.withUnsafeBytes { name in
                writeSetCookieLine(name: name, maxAge: maxAgeSeconds, bucket: bucket, saltTag: saltTag, unit: 0,
                                   signatures: signatures?.base, secure: secure, into: out)
            }
        }
    }
}

extension Snapshot {
    /// Writes the Set-Cookie line `decision` asks for (`decision.setCookie`), like
    /// `Sticky.writeSetCookie`; 0 when the decision's route has no sticky split or `out` is too
    /// small.
    public func writeSetCookie(for decision: Decision, secure: Bool, into out: UnsafeMutableRawBufferPointer) -> Int {
        guard decision.route >= 0, decision.route < table.routes.count else { return 0 }
        let route = table.routes[decision.route]
        guard route.split >= 0 else { return 0 }
        let split = table.splits[Int(route.split)]
        guard split.sticky else { return 0 }
        let unit = split.experiment >= 0 ? decision.unit : 0
        return withExtendedLifetime(self) {
            writeSetCookieLine(name: table.bytes(split.cookieName), maxAge: split.maxAgeSeconds, bucket: decision.bucket,
                               saltTag: split.saltTag, unit: unit, signatures: split.signatures, secure: secure, into: out)
        }
    }
}

extension RoutingTable {
    /// Where the bucket comes from once no pin applied. With `preferCookie` (the default when
    /// the cookie is signed): a valid assignment cookie, then the sticky key (whose bucket is
    /// then stored in the cookie, so the first assignment sticks), then a fresh bucket. Without:
    /// the key, then the cookie, then a fresh bucket. A fresh bucket comes from `random` and the
    /// proxy must store it (setCookie).
    @inline(__always)
    func assign<R: RoutingRequest>(_ split: TableSplit, _ request: R, _ finds: CookieFinds,
                                   random: UInt64) -> (bucket: Int32, setCookie: Bool) {
        if split.preferCookie && finds.bucket >= 0 { return (finds.bucket, false) }
        var bucket: Int32 = -1
        let salt = bytes(split.salt)
        switch split.keyKind {
        case .header:
            _ = anyHeader(request, split.keyName) { value in
                if value.count > 0 { bucket = stableBucket(salt: salt, key: value) }
                return bucket >= 0
            }
        case .cookie:
            if finds.hasKey { bucket = stableBucket(salt: salt, key: finds.key) }
        case .none:
            break
        }
        if bucket >= 0 { return (bucket, split.preferCookie) }
        if finds.bucket >= 0 { return (finds.bucket, false) }
        return (freshBucket(random), true)
    }
}

/// Every bucket's cookie signature, base64url, `encodedSignatureBytes` each, in bucket order.
/// Immutable once made, so snapshots built from the same secret and salt can share one.
public final class SignatureTable: @unchecked Sendable {
    // Written once in init, read-only after.
    let bytes: UnsafeMutableRawBufferPointer
    var base: UnsafeRawPointer { UnsafeRawPointer(bytes.baseAddress!) }
    /// The salt's tag the signed messages carry.
    public let saltTag: UInt32

    /// Signs all 10,000 buckets' cookies for `salt` (milliseconds of HMAC; never per request).
    public convenience init(signer: @escaping CookieSigner, salt: Bytes) {
        self.init(signer, saltTag: Sticky.saltTag(salt))!
    }

    init?(_ signer: CookieSigner?, saltTag: UInt32) {
        guard let signer else { return nil }
        self.saltTag = saltTag
        bytes = .allocate(byteCount: Int(Split.buckets) * encodedSignatureBytes, alignment: 8)
        withUnsafeTemporaryAllocation(byteCount: maxUnsignedBytes + Sticky.signatureBytes, alignment: 8) { scratch in
            let message = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<maxUnsignedBytes])
            let mac = UnsafeMutableRawBufferPointer(rebasing: scratch[maxUnsignedBytes...])
            for bucket in 0..<Int(Split.buckets) {
                let n = writeUnsignedCookie(Int32(bucket), saltTag: saltTag, into: message)
                signer(UnsafeRawBufferPointer(message).slice(0, n), mac)
                let at = bucket * encodedSignatureBytes
                base64URLEncode(UnsafeRawBufferPointer(mac),
                                into: UnsafeMutableRawBufferPointer(rebasing: bytes[at..<at + encodedSignatureBytes]))
            }
        }
    }

    deinit { bytes.deallocate() }
}

// MARK: - The cookie format

private let tagBytes = 8
private let encodedSignatureBytes = 43          // 32 bytes in base64url, no padding
private let maxUnsignedBytes = 2 + 4 + 1 + tagBytes
private let unitBytes = 1 + UnitID.length           // ".<16 hex>" in version 2
private let maxDecimalBytes = 19                // Int.max
/// "Set-Cookie: " "=" "; Path=/; Max-Age=" "; HttpOnly; SameSite=Lax" "\r\n"
private let setCookieFixedBytes = 12 + 1 + 18 + 24 + 2
private let secureBytes = 8                     // "; Secure"

@inline(__always)
func stableBucket(salt: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> Int32 {
    var hash = FNV1a.offset64
    FNV1a.add64(&hash, salt)
    FNV1a.add64(&hash, byte: 0)
    FNV1a.add64(&hash, key)
    return Int32(hash % UInt64(Split.buckets))
}

/// A bucket drawn from the request's random input, for requests with nothing sticky.
@inline(__always)
func freshBucket(_ random: UInt64) -> Int32 {
    Int32(SplitMix64.draw(random, Draw.freshBucket) % UInt64(Split.buckets))
}

/// Strict parse of `1.<bucket>.<tag>[.<sig>]` or `2.<bucket>.<tag>.<unit>[.<sig>]`;
/// `signatures` non-nil means the route signs. `unit`: version 2's unit id, else 0.
@inline(__always)
func parseAssignmentCookie(_ value: UnsafeRawBufferPointer, saltTag: UInt32, signatures: UnsafeRawPointer?,
                           unit: inout UInt64) -> Int32? {
    let n = value.count
    guard n >= 4 + tagBytes, value[0] == UInt8(ascii: "1") || value[0] == UInt8(ascii: "2"),
          value[1] == UInt8(ascii: ".") else { return nil }
    let versioned = value[0] == UInt8(ascii: "2")
    var i = 2
    var bucket: Int32 = 0
    while i < n && i < 7 && isDigit(value[i]) {
        bucket = bucket * 10 + Int32(value[i] &- UInt8(ascii: "0"))
        i += 1
    }
    let digits = i - 2
    guard digits >= 1, digits <= 4, digits == 1 || value[2] != UInt8(ascii: "0") else { return nil }
    guard i < n, value[i] == UInt8(ascii: ".") else { return nil }
    i += 1
    guard n - i >= tagBytes else { return nil }
    var k = 0
    while k < tagBytes {
        if value[i + k] != hexDigit(saltTag, k) { return nil }
        k += 1
    }
    i += tagBytes
    var parsedUnit: UInt64 = 0
    if versioned {
        guard n - i > UnitID.length, value[i] == UInt8(ascii: "."),
              let id = UnitID.parse(value.slice(i + 1, i + 1 + UnitID.length)), id != 0 else { return nil }
        parsedUnit = id
        i += unitBytes
    }
    guard let signatures else {
        guard i == n else { return nil }
        unit = parsedUnit
        return bucket
    }
    guard i < n, value[i] == UInt8(ascii: "."), n - i - 1 == encodedSignatureBytes else { return nil }
    let expected = UnsafeRawBufferPointer(start: signatures + Int(bucket) * encodedSignatureBytes, count: encodedSignatureBytes)
    guard constantTimeEqual(expected, value.slice(i + 1, n)) else { return nil }
    unit = parsedUnit
    return bucket
}

@inline(__always)
private func cookieValueCount(_ bucket: Int32, unit: UInt64, signed: Bool) -> Int {
    2 + decimalCount(Int(bucket)) + 1 + tagBytes + (unit != 0 ? unitBytes : 0) + (signed ? 1 + encodedSignatureBytes : 0)
}

/// `1.<bucket>.<tag>` (what the signature covers, whatever the version); the caller checked
/// the space.
private func writeUnsignedCookie(_ bucket: Int32, saltTag: UInt32, version: UInt8 = UInt8(ascii: "1"),
                                 into out: UnsafeMutableRawBufferPointer) -> Int {
    var w = ByteWriter(out)
    w.append(version)
    w.append(UInt8(ascii: "."))
    w.appendDecimal(Int(bucket))
    w.append(UInt8(ascii: "."))
    for k in 0..<tagBytes { w.append(hexDigit(saltTag, k)) }
    return w.count
}

/// The full cookie value, version 2 when `unit` is not 0; the caller checked the bucket and the
/// space.
private func writeAssignmentCookie(_ bucket: Int32, saltTag: UInt32, unit: UInt64, signatures: UnsafeRawPointer?,
                                   into out: UnsafeMutableRawBufferPointer) -> Int {
    var w = ByteWriter(out)
    w.count = writeUnsignedCookie(bucket, saltTag: saltTag, version: UInt8(ascii: unit != 0 ? "2" : "1"), into: out)
    if unit != 0 {
        w.append(UInt8(ascii: "."))
        w.count += UnitID.write(unit, into: UnsafeMutableRawBufferPointer(rebasing: out[w.count...]))
    }
    if let signatures {
        w.append(UInt8(ascii: "."))
        w.append(UnsafeRawBufferPointer(start: signatures + Int(bucket) * encodedSignatureBytes, count: encodedSignatureBytes))
    }
    return w.count
}

private func writeSetCookieLine(name: UnsafeRawBufferPointer, maxAge: Int, bucket: Int32, saltTag: UInt32, unit: UInt64,
                                signatures: UnsafeRawPointer?, secure: Bool,
                                into out: UnsafeMutableRawBufferPointer) -> Int {
    guard bucket >= 0, bucket < Split.buckets else { return 0 }
    let maxAge = max(maxAge, 0)
    let needed = setCookieFixedBytes + name.count + cookieValueCount(bucket, unit: unit, signed: signatures != nil)
        + decimalCount(maxAge) + (secure ? secureBytes : 0)
    guard out.count >= needed else { return 0 }
    var w = ByteWriter(out)
    w.append("Set-Cookie: ")
    w.append(name)
    w.append(UInt8(ascii: "="))
    w.count += writeAssignmentCookie(bucket, saltTag: saltTag, unit: unit, signatures: signatures,
                                     into: UnsafeMutableRawBufferPointer(rebasing: out[w.count...]))
    w.append("; Path=/; Max-Age=")
    w.appendDecimal(maxAge)
    w.append("; HttpOnly; SameSite=Lax")
    if secure { w.append("; Secure") }
    w.append("\r\n")
    return w.count
}

/// Hex digit `k` (0 = most significant) of `tag`, lowercase.
@inline(__always)
private func hexDigit(_ tag: UInt32, _ k: Int) -> UInt8 {
    let nibble = UInt8(truncatingIfNeeded: tag >> UInt32(28 - 4 * k)) & 0x0f
    return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}

/// Base64url without padding. Branch-free per character, so encoding a MAC leaks no timing.
private func base64URLEncode(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
    var o = 0
    var i = 0
    while i + 3 <= bytes.count {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out[o] = base64URLCharacter(v >> 18)
        out[o + 1] = base64URLCharacter(v >> 12)
        out[o + 2] = base64URLCharacter(v >> 6)
        out[o + 3] = base64URLCharacter(v)
        o += 4
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let v = UInt32(bytes[i]) << 16
        out[o] = base64URLCharacter(v >> 18)
        out[o + 1] = base64URLCharacter(v >> 12)
    } else if rest == 2 {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out[o] = base64URLCharacter(v >> 18)
        out[o + 1] = base64URLCharacter(v >> 12)
        out[o + 2] = base64URLCharacter(v >> 6)
    }
}

/// The base64url character for the low 6 bits of `value`: A-Z a-z 0-9 - _.
@inline(__always)
private func base64URLCharacter(_ value: UInt32) -> UInt8 {
    let v = Int(value & 0x3f)
    // atLeast(k) is -1 (all ones) when v >= k, else 0.
    @inline(__always) func atLeast(_ k: Int) -> Int { (k - 1 - v) >> 63 }
    var c = v + Int(UInt8(ascii: "A"))
    c += atLeast(26) & 6        // 'a' - 26
    c += atLeast(52) & -75      // '0' - 52
    c += atLeast(62) & -13      // '-' - 62
    c += atLeast(63) & 49       // '_' - 63
    return UInt8(truncatingIfNeeded: c)
}

@inline(__always)
func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}

@inline(__always)
private func decimalCount(_ value: Int) -> Int {
    var n = 1
    var v = value
    while v >= 10 {
        v /= 10
        n += 1
    }
    return n
}

/// Appends bytes to a caller buffer whose size was checked up front.
private struct ByteWriter {
    let out: UnsafeMutableRawBufferPointer
    var count = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    mutating func append(_ byte: UInt8) {
        out[count] = byte
        count += 1
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if bytes.isEmpty { return }
        UnsafeMutableRawBufferPointer(rebasing: out[count..<count + bytes.count]).copyMemory(from: bytes)
        count += bytes.count
    }

    /// Non-negative decimal, no leading zeros.
    mutating func appendDecimal(_ value: Int) {
        let n = decimalCount(value)
        var v = value
        var k = count + n - 1
        while k >= count {
            out[k] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            k -= 1
        }
        count += n
    }
}
