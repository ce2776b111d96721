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
        for b in bytes {
            if isUnreserved(b) || (keepSlash && b == UInt8(ascii: "/")) {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0xF)])
            }
        }
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
        var out: [UInt8] = []
        out.reserveCapacity(path.count + 16)
        appendURI(path: path, normalize: normalize, to: &out)
        return out
    }

    static func appendURI(path: [UInt8], normalize: Bool, to out: inout [UInt8]) {
        if normalize {
            encode(normalizedPath(path), keepSlash: true, into: &out)
        } else {
            encode(path.isEmpty ? [UInt8(ascii: "/")] : path, keepSlash: true, into: &out)
        }
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

    /// The canonical header block ("name:value\n" per name, sorted) and the signed-headers list
    /// ("a;b;c"). Names are lowercased; a value is trimmed and each run of whitespace in it
    /// (folded lines included) becomes one space; the values of a repeated name join with ",".
    public static func headers(_ fields: [(name: [UInt8], value: [UInt8])]) -> (canonical: [UInt8], signed: [UInt8]) {
        var canonical: [UInt8] = []
        var signed: [UInt8] = []
        canonical.reserveCapacity(fields.reduce(0) { $0 + $1.name.count + $1.value.count + 2 })
        appendHeaders(fields, canonical: &canonical, signed: &signed)
        return (canonical, signed)
    }

    /// `headers` appended to `canonical` and `signed`: the fields are ordered by index, compared
    /// in lower case, so no name is copied before it is written.
    static func appendHeaders(_ fields: [(name: [UInt8], value: [UInt8])], canonical: inout [UInt8], signed: inout [UInt8]) {
        // Sorted by name, stably: a repeated name's values keep their order.
        var order = Array(fields.indices)
        order.sort { a, b in
            let c = compareLowercased(fields[a].name, fields[b].name)
            return c != 0 ? c < 0 : a < b
        }
        for (i, f) in order.enumerated() {
            let name = fields[f].name
            if i > 0 && compareLowercased(fields[order[i - 1]].name, name) == 0 {
                canonical[canonical.count - 1] = UInt8(ascii: ",")   // the previous value's "\n"
            } else {
                if i > 0 { signed.append(UInt8(ascii: ";")) }
                for b in name {
                    signed.append(lowercased(b))
                    canonical.append(lowercased(b))
                }
                canonical.append(UInt8(ascii: ":"))
            }
            appendTrimmedCollapsed(fields[f].value, to: &canonical)
            canonical.append(UInt8(ascii: "\n"))
        }
    }

    /// The order of `a` and `b` lowercased (negative, zero, positive), as
    /// `lexicographicallyPrecedes` would give it on lowercased copies.
    static func compareLowercased(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<min(pa.count, pb.count) {
                    let x = lowercased(pa[i])
                    let y = lowercased(pb[i])
                    if x != y { return x < y ? -1 : 1 }
                }
                return pa.count - pb.count
            }
        }
    }

    @inline(__always)
    public static func lowercasedASCII(_ b: UInt8) -> UInt8 { lowercased(b) }

    @inline(__always)
    static func lowercased(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n")
    }

    /// `value` trimmed, each inner run of whitespace one space.
    static func appendTrimmedCollapsed(_ value: [UInt8], to out: inout [UInt8]) {
        var started = false
        var pendingSpace = false
        for b in value {
            if isWhitespace(b) {
                pendingSpace = started
                continue
            }
            if pendingSpace { out.append(UInt8(ascii: " ")) }
            pendingSpace = false
            started = true
            out.append(b)
        }
    }

    /// The canonical request: method, URI, query, headers, signed headers, payload hash.
    public static func request(method: [UInt8], path: [UInt8], query: [UInt8], headers: [(name: [UInt8], value: [UInt8])],
                               payloadHash: [UInt8], normalize: Bool = true) -> (canonical: [UInt8], signedHeaders: [UInt8]) {
        var out: [UInt8] = []
        var signed: [UInt8] = []
        out.reserveCapacity(method.count + 2 * path.count + query.count + payloadHash.count + 256
                            + headers.reduce(0) { $0 + 2 * $1.name.count + $1.value.count + 2 })
        signed.reserveCapacity(headers.reduce(0) { $0 + $1.name.count + 1 })
        out += method
        out.append(UInt8(ascii: "\n"))
        appendURI(path: path, normalize: normalize, to: &out)
        out.append(UInt8(ascii: "\n"))
        if !query.isEmpty { out += self.query(query) }
        out.append(UInt8(ascii: "\n"))
        appendHeaders(headers, canonical: &out, signed: &signed)
        out.append(UInt8(ascii: "\n"))
        out += signed
        out.append(UInt8(ascii: "\n"))
        out += payloadHash
        return (out, signed)
    }
}
