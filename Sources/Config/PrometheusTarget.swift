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
        if url.hasPrefix("http://") {
            secure = false
        } else if url.hasPrefix("https://") {
            secure = true
        } else {
            return nil
        }
        self.caFile = caFile
        var rest = Substring(url.dropFirst(secure ? "https://".count : "http://".count))
        var prefix = ""
        if let slash = rest.firstIndex(of: "/") {
            prefix = String(rest[slash...])
            rest = rest[..<slash]
        }
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard case .success(let parts) = HostPort.split(rest), !parts.host.isEmpty else { return nil }
        host = String(parts.host)
        if parts.port != nil {
            guard let n = parts.portNumber(in: 1...65535) else { return nil }
            port = n
        } else {
            port = secure ? 443 : 80
        }
        self.prefix = prefix
    }
}
