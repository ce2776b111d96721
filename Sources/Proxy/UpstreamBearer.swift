// Requests to a pool that proves itself with a bearer token (a Google ID token for Cloud Run
// or Cloud Functions, `auth.google`): `Authorization: Bearer TOKEN` on every request, shadow
// copy, health check and warm-up, the token read from its LiveCredential each time so a
// renewal reaches the next request. The client's own Authorization is moved to
// X-Forwarded-Authorization or dropped, like a signed pool's (UpstreamSigning).

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
