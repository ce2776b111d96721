// The canonical request of AWS Signature Version 4 (AWS's "Create a canonical request"), for
// services other than S3: the path normalized and encoded once more on top of its wire form,
// the query decoded and re-encoded then sorted, header names lowercased and values trimmed with
// inner whitespace collapsed. Checked byte for byte against aws-c-auth's published test suite
// and, through the proxy, against botocore.

public enum SigV4Canonical {
    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Percent-encodes (upper-case hex) every byte but the unreserved ones, and "/" when
    /// `keepSlash`.
    public static func encode<C: Collection<UInt8>>(_ bytes: C, keepSlash: Bool, into out: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * bytes.count) { t in
            out += UnsafeBufferPointer(start: t.baseAddress!, count: writeEncoded(bytes, keepSlash: keepSlash, to: t.baseAddress!))
        }
    }

    /// `encode` written at `out` (room for three bytes a byte): how many bytes it took.
    static func writeEncoded<C: Collection<UInt8>>(_ bytes: C, keepSlash: Bool, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        hexDigits.withUnsafeBufferPointer { hex in
            for b in bytes {
                if isUnreserved(b) || (keepSlash && b == UInt8(ascii: "/")) {
                    out[n] = b
                    n += 1
                } else {
                    out[n] = UInt8(ascii: "%")
                    out[n + 1] = hex[Int(b >> 4)]
                    out[n + 2] = hex[Int(b & 0xF)]
                    n += 3
                }
            }
        }
        return n
    }

    /// Percent-escapes decoded; a "%" not followed by two hex digits stays as it is.
    static func decode<C: Collection<UInt8>>(_ bytes: C) -> [UInt8] where C.Index == Int {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") && i + 2 < bytes.endIndex,
               let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b)
                i += 1
            }
        }
        return out
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// RFC 3986 5.2.4 dot segments removed, and empty segments too (AWS services collapse
    /// "//"): botocore's `remove_dot_segments`, which aws-c-auth agrees with.
    public static func normalizedPath(_ path: [UInt8]) -> [UInt8] {
        guard let first = path.first, let last = path.last else { return [UInt8(ascii: "/")] }
        var segments: [ArraySlice<UInt8>] = []
        for s in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if s.elementsEqual([UInt8(ascii: ".")]) { continue }
            if s.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(s)
        }
        var out: [UInt8] = first == UInt8(ascii: "/") ? [UInt8(ascii: "/")] : []
        for (i, s) in segments.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "/")) }
            out += s
        }
        if last == UInt8(ascii: "/") && !segments.isEmpty { out.append(UInt8(ascii: "/")) }
        return out.isEmpty ? [UInt8(ascii: "/")] : out
    }

    /// The canonical URI of `path` as it goes on the wire: normalized (when `normalize`), then
    /// every byte but unreserved ones and "/" encoded again, so "%20" on the wire signs as "%2520".
    public static func uri(path: [UInt8], normalize: Bool = true) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 3 * max(path.count, 1))
        let n = path.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { writeURI(path: p, normalize: normalize, to: $0.baseAddress!) } }
        return Array(out[..<n])
    }

    /// `uri` written at `out` (room for three bytes a byte of `path`, and one): how many bytes it took.
    static func writeURI(path: UnsafeBufferPointer<UInt8>, normalize: Bool, to out: UnsafeMutablePointer<UInt8>) -> Int {
        if path.isEmpty {
            out[0] = UInt8(ascii: "/")
            return 1
        } else if normalize && !isNormalized(path) {
            return writeEncoded(normalizedPath(Array(path)), keepSlash: true, to: out)
        } else {
            return writeEncoded(path, keepSlash: true, to: out)
        }
    }

    /// Whether `normalizedPath` leaves `path` (not empty) as it is: no "." or ".." segment and
    /// no empty one but before the first "/" and after the last. Nearly every path: it is
    /// encoded as it stands, with no copy.
    static func isNormalized(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while start <= path.count {
            var end = start
            while end < path.count && path[end] != UInt8(ascii: "/") { end += 1 }
            switch end - start {
            case 0:
                if start != 0 && end != path.count { return false }
            case 1:
                if path[start] == UInt8(ascii: ".") { return false }
            case 2:
                if path[start] == UInt8(ascii: ".") && path[start + 1] == UInt8(ascii: ".") { return false }
            default:
                break
            }
            start = end + 1
        }
        return true
    }

    /// The canonical query string of `query` (without its "?"): each parameter split at its
    /// first "=", decoded and encoded again (so only unreserved bytes stay bare), sorted by key
    /// then value, joined by "&". A parameter without "=" gets an empty value; empty parameters
    /// ("a=1&&b=2") are left out.
    public static func query(_ query: [UInt8]) -> [UInt8] {
        var pairs: [([UInt8], [UInt8])] = []
        for param in query.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let eq = param.firstIndex(of: UInt8(ascii: "="))
            let key = eq.map { param[param.startIndex..<$0] } ?? param
            let value = eq.map { param[($0 + 1)...] } ?? []
            var k: [UInt8] = []
            var v: [UInt8] = []
            encode(decode(key), keepSlash: false, into: &k)
            encode(decode(value), keepSlash: false, into: &v)
            pairs.append((k, v))
        }
        pairs.sort { a, b in
            a.0 != b.0 ? a.0.lexicographicallyPrecedes(b.0) : a.1.lexicographicallyPrecedes(b.1)
        }
        var out: [UInt8] = []
        for (i, p) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            out += p.0
            out.append(UInt8(ascii: "="))
            out += p.1
        }
        return out
    }

    /// The canonical request: method, URI, query, headers, signed headers, payload hash.
    public static func request(method: [UInt8], path: [UInt8], query: [UInt8], headers: [(name: [UInt8], value: [UInt8])],
                               payloadHash: [UInt8], normalize: Bool = true) -> (canonical: [UInt8], signedHeaders: [UInt8]) {
        let (bytes, fields) = laidEndToEnd(headers)
        let canonicalQuery = query.isEmpty ? [] : self.query(query)
        var canonical = [UInt8](repeating: 0, count: maxRequestBytes(method: method.count, path: path.count, query: canonicalQuery.count,
                                                                     fields: fields, payloadHash: payloadHash.count))
        var signed = [UInt8](repeating: 0, count: maxHeaderBytes(fields))
        var scratch = HeaderScratch()
        let n = method.withUnsafeBufferPointer { m in path.withUnsafeBufferPointer { p in canonicalQuery.withUnsafeBufferPointer { q in
            bytes.withUnsafeBufferPointer { b in payloadHash.withUnsafeBufferPointer { hash in
                canonical.withUnsafeMutableBufferPointer { c in signed.withUnsafeMutableBufferPointer { s in
                    writeRequest(method: m, path: p, canonicalQuery: q, fields: fields, in: b, payloadHash: hash, normalize: normalize,
                                 to: c.baseAddress!, signed: s.baseAddress!, scratch: &scratch)
                } }
            } }
        } } }
        return (Array(canonical[..<n.canonical]), Array(signed[..<n.signed]))
    }

    /// Bytes the canonical request takes at most (its signed list: `maxHeaderBytes`).
    static func maxRequestBytes(method: Int, path: Int, query: Int, fields: [FieldRange], payloadHash: Int) -> Int {
        method + 3 * max(path, 1) + query + 2 * maxHeaderBytes(fields) + payloadHash + 5
    }

    /// Writes the canonical request of header fields given as ranges of `bytes` (a request head
    /// as it goes on the wire) at `out` (room for `maxRequestBytes`), and its signed-headers list
    /// at `signed`: how many bytes each took. Nothing is appended to an array: a signed request
    /// builds it in memory its owner keeps.
    static func writeRequest(method: UnsafeBufferPointer<UInt8>, path: UnsafeBufferPointer<UInt8>,
                             canonicalQuery query: UnsafeBufferPointer<UInt8>, fields: [FieldRange], in bytes: UnsafeBufferPointer<UInt8>,
                             payloadHash: UnsafeBufferPointer<UInt8>, normalize: Bool, to out: UnsafeMutablePointer<UInt8>,
                             signed: UnsafeMutablePointer<UInt8>, scratch: inout HeaderScratch) -> (canonical: Int, signed: Int) {
        var c = 0
        @inline(__always) func put(_ p: UnsafeBufferPointer<UInt8>) {
            if let base = p.baseAddress, p.count > 0 { (out + c).update(from: base, count: p.count) }
            c += p.count
        }
        @inline(__always) func newline() {
            out[c] = UInt8(ascii: "\n")
            c += 1
        }
        put(method)
        newline()
        c += writeURI(path: path, normalize: normalize, to: out + c)
        newline()
        put(query)
        newline()
        let (h, n) = writeHeaders(fields, in: bytes, canonical: out + c, signed: signed, scratch: &scratch)
        c += h
        newline()
        put(UnsafeBufferPointer(start: signed, count: n))
        newline()
        put(payloadHash)
        return (c, n)
    }
}
