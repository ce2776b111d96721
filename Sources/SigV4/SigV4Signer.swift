// From a canonical request to the `Authorization` header: the string to sign, the signing key
// (HMAC chain over date, region, service), the signature. The signing key is derived once per
// (secret, day, region, service) and kept in a cache its owner holds (one per event loop: no
// lock on the request path).
import Crypto
import Glibc

public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// SHA-256 of the empty string: the payload hash of a bodiless request.
    public static let emptyPayloadHash: [UInt8] = hex(SHA256.digest([UInt8]()))

    /// Lower-case hex.
    public static func hex(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        bytes.withUnsafeBytes { appendHex($0, to: &out) }
        return out
    }

    /// Appends `bytes` in lower-case hex.
    public static func appendHex(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        // Written into scratch memory and appended in one copy: an append per digit cost 34
        // instructions a byte.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * bytes.count) { digits in
            writeHex(bytes, to: digits.baseAddress!)
            out += UnsafeBufferPointer(digits)
        }
    }

    /// Writes `bytes` in lower-case hex at `out` (room for twice as many bytes): two digits a
    /// byte from a table (a signed request writes three 32-byte digests so).
    public static func writeHex(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) {
        hexPairs.withUnsafeBufferPointer { pairs in
            let o = UnsafeMutableRawPointer(out)
            for i in 0..<bytes.count {
                o.storeBytes(of: pairs[Int(bytes[i])], toByteOffset: 2 * i, as: UInt16.self)
            }
        }
    }

    /// The two lower-case hex digits of each byte value, as they lie in memory.
    private static let hexPairs: [UInt16] = (0..<256).map { b in
        let digits = Array("0123456789abcdef".utf8)
        return (UInt16(digits[b >> 4]) | UInt16(digits[b & 0xF]) << 8).littleEndian
    }

    /// `YYYYMMDDTHHMMSSZ` (UTC) for `epochSeconds`.
    public static func amzDate(epochSeconds: Int) -> [UInt8] {
        var t = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(16)
        func two(_ v: Int32) {
            out.append(UInt8(ascii: "0") + UInt8(clamping: (v / 10) % 10))
            out.append(UInt8(ascii: "0") + UInt8(clamping: v % 10))
        }
        let year = parts.tm_year + 1900
        two(year / 100)
        two(year % 100)
        two(parts.tm_mon + 1)
        two(parts.tm_mday)
        out.append(UInt8(ascii: "T"))
        two(parts.tm_hour)
        two(parts.tm_min)
        two(parts.tm_sec)
        out.append(UInt8(ascii: "Z"))
        return out
    }

    /// `date/region/service/aws4_request` (date: the first 8 bytes of the amz date).
    public static func scope(amzDate: [UInt8], region: String, service: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + region.utf8.count + service.utf8.count + 15)
        out += amzDate.prefix(8)
        out.append(UInt8(ascii: "/"))
        out += region.utf8
        out.append(UInt8(ascii: "/"))
        out += service.utf8
        out += "/aws4_request".utf8
        return out
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    public static func signingKey(secret: String, date: ArraySlice<UInt8>, region: String, service: String) -> [UInt8] {
        let kDate = HMACSHA256.mac(key: Array("AWS4\(secret)".utf8), message: Array(date))
        let kRegion = HMACSHA256.mac(key: kDate, message: Array(region.utf8))
        let kService = HMACSHA256.mac(key: kRegion, message: Array(service.utf8))
        return HMACSHA256.mac(key: kService, message: Array("aws4_request".utf8))
    }
}

/// Signing keys by (secret, day, region, service); a new day evicts the old days' keys.
public struct SigningKeyCache {
    private struct Entry {
        var secret: String
        var date: [UInt8]
        var region: String
        var service: String
        var key: [UInt8]
        var hmac: HMACSHA256Key
    }
    private var entries: [Entry] = []
    /// Keys derived so far (tests check the cache is used).
    public private(set) var derivations = 0

    public init() {}

    public mutating func key(secret: String, date: ArraySlice<UInt8>, region: String, service: String) -> [UInt8] {
        entries[index(secret: secret, date: date, region: region, service: service)].key
    }

    /// The signing key with its HMAC pads already hashed (read in place: no copy of the entry).
    mutating func hmacKey(secret: String, date: ArraySlice<UInt8>, region: String, service: String) -> HMACSHA256Key {
        entries[index(secret: secret, date: date, region: region, service: service)].hmac
    }

    private mutating func index(secret: String, date: ArraySlice<UInt8>, region: String, service: String) -> Int {
        for i in entries.indices {
            if entries[i].date.elementsEqual(date) && entries[i].region == region && entries[i].service == service
                && entries[i].secret == secret {
                return i
            }
        }
        entries.removeAll { !$0.date.elementsEqual(date) }
        let key = SigV4.signingKey(secret: secret, date: date, region: region, service: service)
        derivations += 1
        entries.append(Entry(secret: secret, date: Array(date), region: region, service: service, key: key, hmac: HMACSHA256Key(key)))
        return entries.count - 1
    }
}

/// One request to sign: what goes on the wire, headers included (x-amz-date, and
/// x-amz-content-sha256 / x-amz-security-token when sent, are among them: the caller adds them).
public struct SigV4Request {
    public var method: [UInt8]
    public var path: [UInt8]
    public var query: [UInt8]
    public var headers: [(name: [UInt8], value: [UInt8])]
    public var payloadHash: [UInt8]

    public init(method: [UInt8], path: [UInt8], query: [UInt8], headers: [(name: [UInt8], value: [UInt8])], payloadHash: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.payloadHash = payloadHash
    }
}

/// Every intermediate of one signature, for tests and for the header.
public struct SigV4Signature {
    public var canonicalRequest: [UInt8]
    public var stringToSign: [UInt8]
    public var signature: [UInt8]
    public var authorization: [UInt8]
}

extension SigV4 {
    public static func sign(_ request: SigV4Request, credentials: AWSCredentials, region: String, service: String, amzDate: [UInt8],
                            normalize: Bool = true, keys: inout SigningKeyCache) -> SigV4Signature {
        let (bytes, fields) = SigV4Canonical.laidEndToEnd(request.headers)
        return sign(method: request.method, path: request.path, query: request.query, fields: fields, in: bytes,
                    payloadHash: request.payloadHash, credentials: credentials, region: region, service: service, amzDate: amzDate,
                    normalize: normalize, keys: &keys)
    }

    /// A request whose header fields are ranges of `bytes`, signed as the proxy signs (SigV4Workspace).
    public static func sign(method: [UInt8], path: [UInt8], query: [UInt8], fields: [SigV4Canonical.FieldRange], in bytes: [UInt8],
                            payloadHash: [UInt8], credentials: AWSCredentials, region: String, service: String, amzDate: [UInt8],
                            normalize: Bool = true, keys: inout SigningKeyCache) -> SigV4Signature {
        // Method, path and query laid before the fields, as in a request head.
        let line = method + path + query
        let shift = line.count
        let all = line + bytes
        let moved = fields.map { f in
            SigV4Canonical.FieldRange(name: (f.name.lowerBound + shift)..<(f.name.upperBound + shift),
                                      value: (f.value.lowerBound + shift)..<(f.value.upperBound + shift))
        }
        var work = SigV4Workspace(keys: keys)
        all.withUnsafeBufferPointer { b in
            payloadHash.withUnsafeBufferPointer { hash in
                work.sign(method: 0..<method.count, path: method.count..<(method.count + path.count), query: (method.count + path.count)..<shift,
                          fields: moved, in: b, payloadHash: hash, credentials: credentials, region: region, service: service,
                          amzDate: amzDate, normalize: normalize)
            }
        }
        keys = work.keys
        var authorization: [UInt8] = []
        work.appendAuthorization(to: &authorization)
        return SigV4Signature(canonicalRequest: work.canonical, stringToSign: work.stringToSign, signature: work.signature,
                              authorization: authorization)
    }
}
