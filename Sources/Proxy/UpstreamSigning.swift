// Requests to a locked-down function endpoint signed with AWS Signature Version 4, published
// with the routing snapshot like upstream TLS. The signature covers the body's hash, so a signed
// request's body is read whole first (ClientConnectionBuffering) and sent with its length; its
// head is written as for any upstream, then rewritten here: the client's Authorization moved or
// dropped, the client's own x-amz-* signing fields left out, X-Amz-Date, X-Amz-Content-Sha256,
// X-Amz-Security-Token and the Authorization of the signature added. Every field sent is signed
// but those a hop may change (User-Agent, Expect, X-Amzn-Trace-Id, hop-by-hop fields, the
// forwarding fields each hop appends to, the trace context each traced hop rewrites).
import Crypto
import Glibc
import Reactor
import Routing
import SigV4

public final class UpstreamSigning: Sendable {
    public enum ClientAuthorization: Sendable { case move, drop }

    public let region: String
    public let service: String
    public let maxBodyBytes: Int64
    public let clientAuthorization: ClientAuthorization
    /// Read once per request: renewed in the background when they expire (LiveCredential).
    public let credentials: LiveCredential<AWSCredentials>

    public init(region: String, service: String, maxBodyBytes: Int64, clientAuthorization: ClientAuthorization,
                credentials: LiveCredential<AWSCredentials>) {
        self.region = region
        self.service = service
        self.maxBodyBytes = maxBodyBytes
        self.clientAuthorization = clientAuthorization
        self.credentials = credentials
    }

    /// Where a moved client Authorization goes.
    public static let forwardedAuthorization = "X-Forwarded-Authorization"

    /// Rewrites `head` (a request head as HeadWriter serialized it, with its framing line for a
    /// body of `body.count` bytes sent with a length) into the signed head, built in `scratch`.
    /// Lines the signing leaves alone are copied in runs (for most heads, one copy up to the
    /// blank line), and a field is signed where it lands in the new head.
    func sign(head: inout ByteBuffer, body: UnsafeRawBufferPointer, epochSeconds: Int, scratch: inout SigningScratch, pool: BufferPool) {
        let credentials = self.credentials.current
        let text = UnsafeBufferPointer(start: head.readPointer.assumingMemoryBound(to: UInt8.self), count: head.readableCount)
        scratch.out.reader = 0
        scratch.out.writer = 0
        scratch.fields.removeAll(keepingCapacity: true)
        // The request line: method SP target SP version.
        var lineEnd = Self.lineEnd(text, from: 0)
        guard let sp1 = Self.find(UInt8(ascii: " "), in: text, 0..<lineEnd.content),
              let sp2 = Self.find(UInt8(ascii: " "), in: text, (sp1 + 1)..<lineEnd.content) else { return }
        let q = Self.find(UInt8(ascii: "?"), in: text, (sp1 + 1)..<sp2)

        let amzDate = scratch.work.amzDate(epochSeconds: epochSeconds)
        scratch.writePayloadHash(body)
        // Bytes of `text` from `run` on are still to be copied: a kept line's offsets in the
        // new head are its offsets in `text` less `shift`.
        var run = 0
        var shift = 0
        func flush(upTo end: Int, resumingAt next: Int) {
            scratch.out.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(text)[run..<end]), pool: pool)
            run = next
            shift = run - scratch.out.writer
        }
        var headEnd = text.count
        while lineEnd.next < text.count {
            let start = lineEnd.next
            lineEnd = Self.lineEnd(text, from: start)
            if lineEnd.content == start {   // the blank line ending the head
                headEnd = start
                break
            }
            guard let colon = Self.find(UInt8(ascii: ":"), in: text, start..<lineEnd.content) else {
                flush(upTo: start, resumingAt: lineEnd.next)
                continue
            }
            switch Self.kinds.kind(of: UnsafeBufferPointer(rebasing: text[start..<colon])) {
            case .other:
                scratch.fields.append(SigV4Canonical.FieldRange(name: (start - shift)..<(colon - shift),
                                                                value: (colon + 1 - shift)..<(lineEnd.content - shift)))
            case .unsigned:
                break
            case .authorization:
                flush(upTo: start, resumingAt: lineEnd.next)
                guard clientAuthorization == .move else { continue }
                let field = scratch.appendField(Self.forwardedAuthorizationName, separator: ":",
                                                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(text)[(colon + 1)..<lineEnd.content]),
                                                pool: pool)
                scratch.fields.append(field)
                shift = run - scratch.out.writer
            case .proxyOwned:
                // The proxy's to set: a client's would forge or break the signature.
                flush(upTo: start, resumingAt: lineEnd.next)
            case .transferEncoding:
                // The body was read whole: it goes with its length.
                flush(upTo: start, resumingAt: lineEnd.next)
                let nameStart = scratch.out.writer
                scratch.out.append(Self.contentLengthName, pool: pool)
                let valueStart = scratch.out.writer
                scratch.out.appendDecimal(body.count, pool: pool)
                scratch.fields.append(SigV4Canonical.FieldRange(name: nameStart..<(valueStart - 2), value: valueStart..<scratch.out.writer))
                scratch.out.append("\r\n", pool: pool)
                shift = run - scratch.out.writer
            }
        }
        flush(upTo: headEnd, resumingAt: text.count)
        // Locals, not closures over `scratch`: a closure capturing it while one of its parts is
        // borrowed makes Swift copy that part (the workspace: a dozen retains a request).
        let payloadHash = scratch.payloadHash
        scratch.fields.append(scratch.appendField("X-Amz-Date", amzDate, pool: pool))
        scratch.fields.append(scratch.appendField("X-Amz-Content-Sha256", payloadHash, pool: pool))
        if var token = credentials.sessionToken {
            token.withUTF8 { scratch.fields.append(scratch.appendField("X-Amz-Security-Token", UnsafeRawBufferPointer($0), pool: pool)) }
        }
        let signed = UnsafeBufferPointer(start: scratch.out.readPointer.assumingMemoryBound(to: UInt8.self), count: scratch.out.readableCount)
        let fields = scratch.fields
        payloadHash.withUnsafeBufferPointer { hash in
            scratch.work.sign(method: 0..<sp1, path: (sp1 + 1)..<(q ?? sp2), query: q.map { ($0 + 1)..<sp2 } ?? sp2..<sp2,
                              fields: fields, in: signed, payloadHash: hash, credentials: credentials, region: region,
                              service: service, amzDate: amzDate)
        }
        scratch.out.append("Authorization: ", pool: pool)
        scratch.out.reserve(scratch.work.authorizationCount, pool: pool)
        scratch.out.writer += scratch.work.writeAuthorization(to: scratch.out.writePointer)
        scratch.out.append("\r\n\r\n", pool: pool)
        // The signed head takes the head's place; the old head's block is the scratch's next
        // (both come from `pool`, and the scratch starts over at every signature).
        swap(&head, &scratch.out)
    }

    /// Where the line starting at `start` ends: its content without CR LF, and the next line.
    private static func lineEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> (content: Int, next: Int) {
        guard let newline = find(UInt8(ascii: "\n"), in: text, start..<text.count) else { return (text.count, text.count) }
        return (newline > start && text[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline, newline + 1)
    }

    /// The first `byte` in `range` of `text` (memchr).
    @inline(__always)
    private static func find(_ byte: UInt8, in text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, let p = memchr(text.baseAddress! + range.lowerBound, Int32(byte), range.count) else { return nil }
        return text.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
    }

    private static let forwardedAuthorizationName: StaticString = "X-Forwarded-Authorization"
    private static let contentLengthName: StaticString = "Content-Length: "

    /// What the proxy does with a client's field, by name.
    enum FieldKind { case authorization, proxyOwned, transferEncoding, unsigned, other }

    /// The names the proxy treats apart.
    private static let kinds = FieldKinds(
        [("authorization", .authorization), ("transfer-encoding", .transferEncoding)]
            // Fields the proxy sets itself.
            + ["x-forwarded-authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"].map { ($0, .proxyOwned) }
            // Fields a hop may add, drop or change, left out of the signature: aws-c-auth's list,
            // the forwarding fields each hop appends to (Envoy leaves out X-Forwarded-For and
            // -Proto too) and the trace context each traced hop rewrites.
            + ["user-agent", "expect", "x-amzn-trace-id", "connection", "te", "upgrade", "keep-alive", "proxy-connection",
               "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "forwarded", "via", "traceparent", "tracestate"]
                .map { ($0, .unsigned) })
}

/// Field names looked up by length first, then compared case-insensitively with the few of that
/// length: most names a request carries have none of their length, or differ at once.
struct FieldKinds {
    /// Every name lowercased, laid end to end in order of length.
    private let names: [UInt8]
    /// Entries of length n: `byLength[n]..<byLength[n + 1]`; entry i's name starts at `starts[i]`.
    private let byLength: [Int]
    private let starts: [Int]
    private let kinds: [UpstreamSigning.FieldKind]

    init(_ named: [(String, UpstreamSigning.FieldKind)]) {
        let sorted = named.map { (Array($0.0.lowercased().utf8), $0.1) }.sorted { $0.0.count < $1.0.count }
        let longest = sorted.last?.0.count ?? 0
        names = sorted.flatMap(\.0)
        kinds = sorted.map(\.1)
        starts = sorted.indices.map { i in sorted[..<i].reduce(0) { $0 + $1.0.count } }
        byLength = (0...(longest + 1)).map { n in sorted.firstIndex { $0.0.count >= n } ?? sorted.count }
    }

    func kind(of n: UnsafeBufferPointer<UInt8>) -> UpstreamSigning.FieldKind {
        guard n.count + 1 < byLength.count else { return .other }
        return names.withUnsafeBufferPointer { names in
            var i = byLength[n.count]
            next: while i < byLength[n.count + 1] {
                let s = starts[i]
                for j in 0..<n.count where SigV4Canonical.lowercasedASCII(n[j]) != names[s + j] {
                    i += 1
                    continue next
                }
                return kinds[i]
            }
            return .other
        }
    }
}

/// One event loop's signing scratch, kept from request to request: the SigV4 workspace (keys,
/// date and Authorization prefix caches, the canonical request's buffers), the signed head being
/// built (a pool block it keeps), its signed fields and the body's hash.
struct SigningScratch {
    var work = SigV4Workspace()
    var out = ByteBuffer()
    var fields: [SigV4Canonical.FieldRange] = []
    /// Lower-case hex of the body's SHA-256, written in place.
    var payloadHash = SigV4.emptyPayloadHash
    /// The head a bearer token is put on is rebuilt here (UpstreamBearer).
    var bearerOut: [UInt8] = []

    init() {
        fields.reserveCapacity(32)
        bearerOut.reserveCapacity(2048)
    }

    mutating func writePayloadHash(_ body: UnsafeRawBufferPointer) {
        if body.isEmpty {
            payloadHash.withUnsafeMutableBufferPointer { h in
                SigV4.emptyPayloadHash.withUnsafeBufferPointer { h.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
            return
        }
        withUnsafeTemporaryAllocation(byteCount: SHA256.byteCount, alignment: 1) { digest in
            var hasher = SHA256Hasher()
            hasher.update(body)
            hasher.finish(into: digest)
            payloadHash.withUnsafeMutableBufferPointer { SigV4.writeHex(UnsafeRawBufferPointer(digest), to: $0.baseAddress!) }
        }
    }

    /// Writes the field line `name` `separator` `value` CRLF into `out`; answers where its name
    /// and value are.
    mutating func appendField(_ name: StaticString, separator: StaticString = ": ", _ value: UnsafeRawBufferPointer,
                              pool: BufferPool) -> SigV4Canonical.FieldRange {
        let nameStart = out.writer
        out.append(name, pool: pool)
        let nameEnd = out.writer
        out.append(separator, pool: pool)
        let valueStart = out.writer
        out.append(value, pool: pool)
        let field = SigV4Canonical.FieldRange(name: nameStart..<nameEnd, value: valueStart..<out.writer)
        out.append("\r\n", pool: pool)
        return field
    }

    mutating func appendField(_ name: StaticString, _ value: [UInt8], pool: BufferPool) -> SigV4Canonical.FieldRange {
        value.withUnsafeBytes { appendField(name, $0, pool: pool) }
    }
}

extension Worker {
    /// Signs the request head in `head` (primary or shadow copy) now, with this loop's scratch.
    func sign(_ head: inout ByteBuffer, with signing: UpstreamSigning, body: UnsafeRawBufferPointer) {
        signing.sign(head: &head, body: body, epochSeconds: time(nil), scratch: &signingScratch, pool: buffers)
        stats.add(.signedRequests)
    }

    /// Puts `bearer`'s token on the request head in `head` (primary or shadow copy), rebuilt in
    /// this loop's scratch.
    func bear(_ head: inout ByteBuffer, with bearer: UpstreamBearer) {
        bearer.apply(to: &head, scratch: &signingScratch.bearerOut, pool: buffers)
    }

    /// A bodiless request of the proxy's own (a health check, a warm-up GET) made ready to send
    /// to a locked pool, as a client's request to it is: the pool's token put on it, or the
    /// request signed now (a locked function answers 403 to one without).
    func authorized(_ request: [UInt8], bearer: UpstreamBearer?, signing: UpstreamSigning?) -> [UInt8] {
        guard bearer != nil || signing != nil else { return request }
        var head = ByteBuffer()
        head.append(request, pool: buffers)
        if let bearer { bear(&head, with: bearer) }
        if let signing { sign(&head, with: signing, body: UnsafeRawBufferPointer(start: nil, count: 0)) }
        let out = Array(head.readableBytes)
        head.release(to: buffers)
        return out
    }
}
