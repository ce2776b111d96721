// Where rollout gates read from in fleet mode ("gateSource": {"prometheus": URL}): a plain value
// the config validates when it loads; Rollouts/PrometheusQuery.swift queries it.
import Routing

/// `http://HOST:PORT[/PREFIX]`.
public struct PrometheusTarget: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var prefix: String

    public init(host: String, port: UInt16, prefix: String) {
        self.host = host
        self.port = port
        self.prefix = prefix
    }

    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = Substring(url.dropFirst("http://".count))
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
            port = 80
        }
        self.prefix = prefix
    }
}
