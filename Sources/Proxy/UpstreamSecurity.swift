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

public struct UpstreamSecurity: Sendable {
    /// By pool key: the upstream name for a plain pool, "name/blue" or "name/green" for a color.
    public var pools: [String: UpstreamTLS]

    public init(pools: [String: UpstreamTLS] = [:]) { self.pools = pools }

    public static let none = UpstreamSecurity()

    public static func key(upstream: String, color: String?) -> String {
        color.map { "\(upstream)/\($0)" } ?? upstream
    }
}
