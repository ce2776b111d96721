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
    func sign(head: inout ByteBuffer, body: UnsafeRawBufferPointer, epochSeconds: Int, scratch: inout SigningScratch, pool: BufferPool) {
        let credentials = self.credentials.current
        let text = UnsafeBufferPointer(start: head.readPointer.assumingMemoryBound(to: UInt8.self), count: head.readableCount)
        scratch.out.removeAll(keepingCapacity: true)
        scratch.fields.removeAll(keepingCapacity: true)
        // The request line: method SP target SP version.
        var lineEnd = Self.lineEnd(text, from: 0)
        guard let sp1 = text[..<lineEnd.content].firstIndex(of: UInt8(ascii: " ")),
              let sp2 = text[(sp1 + 1)..<lineEnd.content].firstIndex(of: UInt8(ascii: " ")) else { return }
        let q = text[(sp1 + 1)..<sp2].firstIndex(of: UInt8(ascii: "?"))
        scratch.out += UnsafeBufferPointer(rebasing: text[..<lineEnd.content])
        scratch.out += Self.crlf

        let amzDate = scratch.work.amzDate(epochSeconds: epochSeconds)
        scratch.payloadHash.removeAll(keepingCapacity: true)
        if body.isEmpty {
            scratch.payloadHash += SigV4.emptyPayloadHash
        } else {
            withUnsafeTemporaryAllocation(byteCount: SHA256.byteCount, alignment: 1) { digest in
                var hasher = SHA256Hasher()
                hasher.update(body)
                hasher.finish(into: digest)
                SigV4.appendHex(UnsafeRawBufferPointer(digest), to: &scratch.payloadHash)
            }
        }
        // Fields are signed where they sit in the head being written.
        while lineEnd.next < text.count {
            let start = lineEnd.next
            lineEnd = Self.lineEnd(text, from: start)
            if lineEnd.content == start { break }   // the blank line ending the head
            guard let colon = text[start..<lineEnd.content].firstIndex(of: UInt8(ascii: ":")) else { continue }
            var name = UnsafeBufferPointer(rebasing: text[start..<colon])
            let value = UnsafeBufferPointer(rebasing: text[(colon + 1)..<lineEnd.content])
            var signed = true
            switch Self.kind(of: name) {
            case .authorization:
                guard clientAuthorization == .move else { continue }
                name = UnsafeBufferPointer(start: Self.forwardedAuthorizationName.utf8Start,
                                           count: Self.forwardedAuthorizationName.utf8CodeUnitCount)
            case .proxyOwned:
                continue   // the proxy's to set: a client's would forge or break the signature
            case .transferEncoding:
                // The body was read whole: it goes with its length.
                scratch.fields.append(Self.appendField(Self.contentLengthName, String(body.count).utf8, to: &scratch.out))
                continue
            case .unsigned:
                signed = false
            case .other:
                break
            }
            let field = Self.appendField(name, value, separator: Self.colon, to: &scratch.out)
            if signed { scratch.fields.append(field) }
        }
        scratch.fields.append(Self.appendField(Self.amzDateName, amzDate, to: &scratch.out))
        scratch.fields.append(Self.appendField(Self.contentSHA256Name, scratch.payloadHash, to: &scratch.out))
        if let token = credentials.sessionToken {
            scratch.fields.append(Self.appendField(Self.securityTokenName, token.utf8, to: &scratch.out))
        }
        scratch.out.withUnsafeBufferPointer { b in
            scratch.payloadHash.withUnsafeBufferPointer { hash in
                scratch.work.sign(method: 0..<sp1, path: (sp1 + 1)..<(q ?? sp2), query: q.map { ($0 + 1)..<sp2 } ?? sp2..<sp2,
                                  fields: scratch.fields, in: b, payloadHash: hash, credentials: credentials, region: region,
                                  service: service, amzDate: amzDate)
            }
        }
        scratch.out += "Authorization: ".utf8
        scratch.work.appendAuthorization(to: &scratch.out)
        scratch.out += Self.crlf
        scratch.out += Self.crlf
        head.consume(head.readableCount)
        head.append(scratch.out, pool: pool)
    }

    /// Where the line starting at `start` ends: its content without CR LF, and the next line.
    private static func lineEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> (content: Int, next: Int) {
        guard let newline = text[start...].firstIndex(of: UInt8(ascii: "\n")) else { return (text.count, text.count) }
        return (newline > start && text[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline, newline + 1)
    }

    private static let crlf: [UInt8] = [13, 10]
    /// `forwardedAuthorization`, as bytes that live as long as the program.
    private static let forwardedAuthorizationName: StaticString = "X-Forwarded-Authorization"
    private static let amzDateName = Array("X-Amz-Date".utf8)
    private static let contentSHA256Name = Array("X-Amz-Content-Sha256".utf8)
    private static let securityTokenName = Array("X-Amz-Security-Token".utf8)

    private static let colon: [UInt8] = [UInt8(ascii: ":")]
    private static let colonSpace: [UInt8] = [UInt8(ascii: ":"), UInt8(ascii: " ")]
    private static let contentLengthName = Array("Content-Length".utf8)

    /// Writes the field line `name` `separator` `value` CRLF; answers where its name and value are.
    private static func appendField<N: Collection<UInt8>, V: Collection<UInt8>>(_ name: N, _ value: V, separator: [UInt8] = colonSpace,
                                                                                 to out: inout [UInt8]) -> SigV4Canonical.FieldRange {
        let nameStart = out.count
        out += name
        let nameEnd = out.count
        out += separator
        let valueStart = out.count
        out += value
        let field = SigV4Canonical.FieldRange(name: nameStart..<nameEnd, value: valueStart..<out.count)
        out += crlf
        return field
    }

    /// What the proxy does with a client's field, by name.
    private enum FieldKind { case authorization, proxyOwned, transferEncoding, unsigned, other }

    private static func kind(of n: UnsafeBufferPointer<UInt8>) -> FieldKind {
        for (lowercase, kind) in kinds where lowercase.count == n.count {
            let same = lowercase.withUnsafeBufferPointer { l in
                for i in 0..<n.count where SigV4Canonical.lowercasedASCII(n[i]) != l[i] { return false }
                return true
            }
            if same { return kind }
        }
        return .other
    }

    /// The names the proxy treats apart, lowercased.
    private static let kinds: [(name: [UInt8], kind: FieldKind)] = {
        let named: [(String, FieldKind)] = [("authorization", .authorization), ("transfer-encoding", .transferEncoding)]
            // Fields the proxy sets itself.
            + ["x-forwarded-authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"].map { ($0, .proxyOwned) }
            // Fields a hop may add, drop or change, left out of the signature: aws-c-auth's list,
            // the forwarding fields each hop appends to (Envoy leaves out X-Forwarded-For and
            // -Proto too) and the trace context each traced hop rewrites.
            + ["user-agent", "expect", "x-amzn-trace-id", "connection", "te", "upgrade", "keep-alive", "proxy-connection",
               "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "forwarded", "via", "traceparent", "tracestate"]
                .map { ($0, .unsigned) }
        return named.map { (Array($0.0.utf8), $0.1) }
    }()
}

/// One event loop's signing scratch, kept from request to request: the SigV4 workspace (keys,
/// date and Authorization prefix caches, the canonical request's buffers), the signed head being
/// built, its signed fields and the body's hash.
struct SigningScratch {
    var work = SigV4Workspace()
    var out: [UInt8] = []
    var fields: [SigV4Canonical.FieldRange] = []
    var payloadHash: [UInt8] = []

    init() {
        out.reserveCapacity(2048)
        fields.reserveCapacity(32)
        payloadHash.reserveCapacity(2 * SHA256.byteCount)
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
        bearer.apply(to: &head, scratch: &signingScratch.out, pool: buffers)
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
