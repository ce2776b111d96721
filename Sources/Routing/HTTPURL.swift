// An http:// or https:// URL of a server the control plane asks (a Prometheus gate source, a
// credentials or metadata endpoint): the scheme, the authority read by HostPort, and the path
// with its query as written. Pure, so the config checks it and the fuzzers build it.

public struct HTTPURL: Sendable, Equatable {
    public var secure: Bool
    /// The host without brackets.
    public var host: String
    public var port: UInt16
    /// The path and query as written ("" when the URL has none); never holds a fragment.
    public var path: String

    public init(secure: Bool, host: String, port: UInt16, path: String) {
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
    }

    /// nil unless `url` is `http://` or `https://`, a host and an optional port in 1...65535,
    /// then a path; user information, white space and control characters are refused.
    public init?(_ url: String) {
        if url.hasPrefix("http://") {
            secure = false
        } else if url.hasPrefix("https://") {
            secure = true
        } else {
            return nil
        }
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        var rest = Substring(url.dropFirst(secure ? "https://".count : "http://".count))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var path = ""
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        guard !rest.contains("@"), case .success(let parts) = HostPort.split(rest), !parts.host.isEmpty,
              parts.bracketed || !parts.host.contains(":") else { return nil }
        host = String(parts.host)
        if parts.port != nil {
            guard let n = parts.portNumber(in: 1...65535) else { return nil }
            port = n
        } else {
            port = secure ? 443 : 80
        }
        if path.hasPrefix("?") { path = "/" + path }
        self.path = path
    }

    /// `host:port` as a Host field says it (an IPv6 literal in brackets).
    public var authority: String {
        (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}
