// Which pools are reached over TLS, published together with the routing snapshot (one lock,
// one swap) so that no request sees a new pool with the old transport or the reverse.
import TLS

/// TLS to one pool: the client context and the names it needs.
public final class UpstreamTLS: Sendable {
    public let client: TLSClient
    /// The upstream's name, for log lines.
    public let upstream: String
    /// SNI and the verified name when set (the `serverName`, else the Host the upstream is sent);
    /// nil: each endpoint's own host.
    public let serverName: String?

    public init(client: TLSClient, upstream: String, serverName: String?) {
        self.client = client
        self.upstream = upstream
        self.serverName = serverName
    }
}

/// The identity of an endpoint in the registry, and so of everything kept per endpoint id: its
/// pooled connections, TLS context and sessions, health verdict, in-flight count and series.
/// Plain: its address (or `name:port@address`). Over TLS it also holds everything that changes
/// what is on the wire or what is trusted: the name it is reached by (SNI and the verified
/// name), whether it is verified, the CA and the client certificate. Two upstreams on one
/// address that differ in any of these never share a connection, a context or a session, and a
/// reload that changes an upstream's trust gives its endpoints new ids, which retires the
/// connections and sessions made under the old trust. Built here only.
public enum EndpointIdentity {
    public static func key(_ address: String, tls: TLSClientSettings?, sni: String?) -> String {
        guard let tls else { return address }
        var key = "\(address) tls \(sni ?? "-")"
        if !tls.verify { key += " noverify" } else if let ca = tls.caFile { key += " ca=\(ca)" } else { key += " ca=system" }
        if let cert = tls.cert { key += " cert=\(cert) key=\(tls.key ?? "-")" }
        return key
    }

    /// Whether registry key `key` names the endpoint at `address`, plain or over TLS.
    public static func isEndpoint(_ key: String, at address: String) -> Bool {
        key == address || key.hasPrefix(address + " tls ")
    }
}

public struct UpstreamSecurity: Sendable {
    /// By pool key: the upstream name for a plain pool, "name/blue" or "name/green" for a color.
    public var pools: [String: UpstreamTLS]
    /// The pools whose requests are signed, by the same key (UpstreamSigning.swift).
    public var signing: [String: UpstreamSigning]
    /// The pools whose requests carry a bearer token, by the same key (UpstreamBearer.swift).
    public var bearer: [String: UpstreamBearer]

    public init(pools: [String: UpstreamTLS] = [:], signing: [String: UpstreamSigning] = [:], bearer: [String: UpstreamBearer] = [:]) {
        self.pools = pools
        self.signing = signing
        self.bearer = bearer
    }

    public static let none = UpstreamSecurity()

    public static func key(upstream: String, color: String?) -> String {
        color.map { "\(upstream)/\($0)" } ?? upstream
    }
}
