// Where rollout gates read from in fleet mode ("gateSource": {"prometheus": URL}): a plain value
// the config validates when it loads; Rollouts/PrometheusQuery.swift queries it.

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
        let hostPort: (Substring, Substring?)
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            let after = rest[rest.index(after: close)...]
            hostPort = (rest[rest.index(after: rest.startIndex)..<close], after.hasPrefix(":") ? after.dropFirst() : nil)
        } else if let colon = rest.lastIndex(of: ":") {
            hostPort = (rest[..<colon], rest[rest.index(after: colon)...])
        } else {
            hostPort = (rest, nil)
        }
        guard !hostPort.0.isEmpty else { return nil }
        host = String(hostPort.0)
        if let p = hostPort.1 {
            guard let n = UInt16(p), n > 0 else { return nil }
            port = n
        } else {
            port = 80
        }
        self.prefix = prefix
    }
}
