// Requests to a pool that proves itself with a bearer token (a Google ID token for Cloud Run
// or Cloud Functions, `auth.google`): `Authorization: Bearer TOKEN` on every request, shadow
// copy, health check and warm-up, the token read from its LiveCredential each time so a
// renewal reaches the next request. The client's own Authorization is moved to
// X-Forwarded-Authorization or dropped, like a signed pool's (UpstreamSigning). The head is
// rewritten once HeadWriter has written it, as a signed one is, so requests to other pools
// pay nothing for it.
import Reactor

/// A token and when it expires. Nothing prints the token.
public struct BearerToken: Sendable, Equatable, CustomStringConvertible {
    /// "Authorization: Bearer TOKEN\r\n", as sent.
    public let line: [UInt8]
    /// Seconds since the epoch.
    public let expiration: Int

    public init(token: String, expiration: Int) {
        line = Array("Authorization: Bearer \(token)\r\n".utf8)
        self.expiration = expiration
    }

    public var description: String { "bearer token (secret), expires at \(expiration)" }
}

public final class UpstreamBearer: Sendable {
    public let clientAuthorization: UpstreamSigning.ClientAuthorization
    public let token: LiveCredential<BearerToken>

    public init(clientAuthorization: UpstreamSigning.ClientAuthorization, token: LiveCredential<BearerToken>) {
        self.clientAuthorization = clientAuthorization
        self.token = token
    }

    /// Rewrites `head` (a request head as HeadWriter wrote it, nothing after it), read where
    /// it lies and rebuilt in `out` (the loop's scratch, kept from request to request): the
    /// client's Authorization moved or dropped, the token's line added last.
    func apply(to head: inout ByteBuffer, scratch out: inout [UInt8], pool: BufferPool) {
        let text = UnsafeBufferPointer(start: head.readPointer.assumingMemoryBound(to: UInt8.self), count: head.readableCount)
        let token = self.token.current.line
        out.removeAll(keepingCapacity: true)
        var start = 0
        var requestLine = true
        while start < text.count {
            let newline = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count - 1
            let line = UnsafeBufferPointer(rebasing: text[start...newline])
            start = newline + 1
            if !requestLine && (line.count == 1 || line.count == 2 && line.first == UInt8(ascii: "\r")) {
                // The blank line that ends the head: the token goes before it.
                out += token
                out += line
                continue
            }
            if !requestLine, let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                switch clientField(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[..<colon]))) {
                case .keep: break
                case .drop: continue
                case .move:
                    out += Self.forwardedName
                    out += UnsafeBufferPointer(rebasing: line[colon...])
                    continue
                }
            }
            requestLine = false
            out += line
        }
        head.consume(head.readableCount)
        head.append(out, pool: pool)
    }

    private static let forwardedName = Array(UpstreamSigning.forwardedAuthorization.utf8)

    enum ClientField { case keep, drop, move }

    /// What becomes of a client's field called `name`: Authorization is the proxy's (moved to
    /// X-Forwarded-Authorization or dropped), and so is X-Forwarded-Authorization, which a
    /// client could forge.
    @inline(__always)
    func clientField(_ name: UnsafeRawBufferPointer) -> ClientField {
        if Self.equalsIgnoringCase(name, Self.authorization) { return clientAuthorization == .move ? .move : .drop }
        return Self.equalsIgnoringCase(name, Self.forwarded) ? .drop : .keep
    }

    private static let authorization = Array("authorization".utf8)
    private static let forwarded = Array("x-forwarded-authorization".utf8)

    /// Field names are tokens: OR-ing 0x20 folds their letters and keeps "-".
    @inline(__always)
    private static func equalsIgnoringCase(_ name: UnsafeRawBufferPointer, _ lower: [UInt8]) -> Bool {
        guard name.count == lower.count else { return false }
        for i in 0..<lower.count where name[i] | 0x20 != lower[i] { return false }
        return true
    }
}
