// Where rollout gates read from in fleet mode ("gateSource": {"prometheus": URL}): a plain value
// the config validates when it loads; Rollouts/PrometheusQuery.swift queries it.
import Routing

/// `http://HOST:PORT[/PREFIX]` or `https://...` (TLS, verified against the system store or the
/// gate source's `caFile`, the name checked against HOST).
public struct PrometheusTarget: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var prefix: String
    public var secure: Bool
    /// The CA file that verifies an https server (nil: the system store).
    public var caFile: String?

    public init(host: String, port: UInt16, prefix: String, secure: Bool = false, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.prefix = prefix
        self.secure = secure
        self.caFile = caFile
    }

    public init?(url: String, caFile: String? = nil) {
        guard let parsed = HTTPURL(url) else { return nil }
        var prefix = parsed.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        self.init(host: parsed.host, port: parsed.port, prefix: prefix, secure: parsed.secure, caFile: caFile)
    }
}
