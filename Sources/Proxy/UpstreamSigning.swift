// Requests to a locked-down function endpoint signed with AWS Signature Version 4, published
// with the routing snapshot like upstream TLS. The signature covers the body's hash, so a signed
// request's body is read whole first (ClientConnectionBuffering) and sent with its length; its
// head is written as for any upstream, then rewritten here: the client's Authorization moved or
// dropped, the client's own x-amz-* signing fields left out, X-Amz-Date, X-Amz-Content-Sha256,
// X-Amz-Security-Token and the Authorization of the signature added. Every field sent is signed
// but the few that hops may change (User-Agent, Expect, X-Amzn-Trace-Id, Connection, TE, Upgrade).
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
    /// body of `body.count` bytes sent with a length) into the signed head.
    func sign(head: inout ByteBuffer, body: UnsafeRawBufferPointer, epochSeconds: Int, keys: inout SigningKeyCache, pool: BufferPool) {
        let credentials = self.credentials.current
        let text = Array(UnsafeRawBufferPointer(start: head.readPointer, count: head.readableCount))
        // Lines without their CR LF, as slices of `text`.
        var lines: [ArraySlice<UInt8>] = []
        lines.reserveCapacity(32)
        var start = 0
        while start < text.count {
            let newline = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            let end = newline > start && text[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
            lines.append(text[start..<end])
            start = newline + 1
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first else { return }
        let parts = requestLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return }
        let target = Array(parts[1])
        let q = target.firstIndex(of: UInt8(ascii: "?"))

        let amzDate = SigV4.amzDate(epochSeconds: epochSeconds)
        let payloadHash = body.isEmpty ? SigV4.emptyPayloadHash : SigV4.hex(SHA256.digest(body))
        // Fields are signed where they sit in the head being written.
        var fields: [SigV4Canonical.FieldRange] = []
        fields.reserveCapacity(lines.count + 2)
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 512)
        out += requestLine
        out += Self.crlf
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            var name = line[line.startIndex..<colon]
            let value = line[(colon + 1)...]
            var signed = true
            switch Self.kind(of: name) {
            case .authorization:
                guard clientAuthorization == .move else { continue }
                name = Self.forwardedAuthorizationBytes[...]
            case .proxyOwned:
                continue   // the proxy's to set: a client's would forge or break the signature
            case .transferEncoding:
                // The body was read whole: it goes with its length.
                fields.append(Self.appendField(Self.contentLengthName, String(body.count).utf8, to: &out))
                continue
            case .unsigned:
                signed = false
            case .other:
                break
            }
            let field = Self.appendField(name, value, separator: Self.colon, to: &out)
            if signed { fields.append(field) }
        }
        fields.append(Self.appendField(Self.amzDateName, amzDate, to: &out))
        fields.append(Self.appendField(Self.contentSHA256Name, payloadHash, to: &out))
        if let token = credentials.sessionToken { fields.append(Self.appendField(Self.securityTokenName, token.utf8, to: &out)) }
        let signature = SigV4.sign(method: Array(parts[0]), path: q.map { Array(target[..<$0]) } ?? target,
                                   query: q.map { Array(target[($0 + 1)...]) } ?? [], fields: fields, in: out, payloadHash: payloadHash,
                                   credentials: credentials, region: region, service: service, amzDate: amzDate, keys: &keys)
        out += "Authorization: ".utf8
        out += signature.authorization
        out += Self.crlf
        out += Self.crlf
        head.consume(head.readableCount)
        head.append(out, pool: pool)
    }

    private static let crlf: [UInt8] = [13, 10]
    private static let forwardedAuthorizationBytes = Array(forwardedAuthorization.utf8)
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

    private static func kind(of name: ArraySlice<UInt8>) -> FieldKind {
        name.withUnsafeBufferPointer { n in
            for (lowercase, kind) in kinds where lowercase.count == n.count {
                let same = lowercase.withUnsafeBufferPointer { l in
                    for i in 0..<n.count where SigV4Canonical.lowercasedASCII(n[i]) != l[i] { return false }
                    return true
                }
                if same { return kind }
            }
            return .other
        }
    }

    /// The names the proxy treats apart, lowercased.
    private static let kinds: [(name: [UInt8], kind: FieldKind)] = {
        let named: [(String, FieldKind)] = [("authorization", .authorization), ("transfer-encoding", .transferEncoding)]
            // Fields the proxy sets itself.
            + ["x-forwarded-authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"].map { ($0, .proxyOwned) }
            // Fields a hop may add, drop or change, left out of the signature (aws-c-auth's list).
            + ["user-agent", "expect", "x-amzn-trace-id", "connection", "te", "upgrade", "keep-alive", "proxy-connection"]
                .map { ($0, .unsigned) }
        return named.map { (Array($0.0.utf8), $0.1) }
    }()
}

extension Worker {
    /// Signs the request head in `head` (primary or shadow copy) now, with this loop's keys.
    func sign(_ head: inout ByteBuffer, with signing: UpstreamSigning, body: UnsafeRawBufferPointer) {
        signing.sign(head: &head, body: body, epochSeconds: time(nil), keys: &signingKeys, pool: buffers)
        stats.add(.signedRequests)
    }
}
