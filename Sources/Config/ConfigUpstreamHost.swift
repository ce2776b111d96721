// Who an upstream says it is: the Host header sent to it (`hostHeader`, for function endpoints
// and virtual hosts that route on Host), set on the upstream or on one color of a blue/green
// upstream, and the name TLS sends as SNI.
import Routing

extension Config {
    /// What one color of a blue/green upstream sets for itself; nil falls back to the upstream.
    public struct ColorSettings: Sendable, Equatable {
        public var hostHeader: String? = nil
        public var tls: UpstreamTLS? = nil
        /// Replaces the upstream's list for this color (ConfigSetHeaders.swift).
        public var setHeaders: [SetHeader]? = nil
        /// Request signing (ConfigAuth.swift).
        public var auth: UpstreamAuth? = nil
        public init(hostHeader: String? = nil, tls: UpstreamTLS? = nil) {
            self.hostHeader = hostHeader
            self.tls = tls
        }
    }
}

extension Config.BlueGreen {
    public func settings(_ color: Color) -> Config.ColorSettings { color == .blue ? blueSettings : greenSettings }
}

extension Config.Upstream {
    /// The Host sent to the pool `color` names (nil for a plain upstream): the color's own,
    /// else the upstream's; nil passes the client's Host.
    public func hostHeader(_ color: Color?) -> String? {
        if let color, let bg = blueGreen, let own = bg.settings(color).hostHeader { return own }
        return hostHeader
    }

    /// TLS to the pool `color` names: the color's own block, else the upstream's.
    public func tls(_ color: Color?) -> Config.UpstreamTLS? {
        if let color, let bg = blueGreen, let own = bg.settings(color).tls { return own }
        return tls
    }

    /// The name sent as SNI (and checked against the certificate) to an endpoint of the pool
    /// `color` names, whose host is `endpointHost` as written: `tls.serverName`, else the host
    /// part of `hostHeader`, else the endpoint's host name; nil for a numeric endpoint with
    /// neither (no SNI is sent to an IP address).
    public func sniName(_ color: Color?, endpointHost: Address) -> String? {
        if let name = tls(color)?.serverName { return name }
        if let host = hostHeader(color) {
            let name = Config.hostPart(host)
            return name.hasPrefix("[") || Address.numeric(name) != nil ? nil : name
        }
        return endpointHost.hostName
    }
}

extension Config {
    /// The host of a Host value without its port: `api.example.com` of `api.example.com:8443`;
    /// a bracketed IPv6 literal keeps its brackets.
    static func hostPart(_ value: String) -> String {
        guard case .success(let parts) = HostPort.split(value) else { return value }
        return parts.bracketed ? "[\(parts.host)]" : String(parts.host)
    }
}

extension ConfigParser {
    /// A Host header value: `name`, `name:port`, an IPv4 address or a bracketed IPv6 one,
    /// optionally with a port.
    func hostHeader(_ value: ConfigValue) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        let parts: HostPort
        switch HostPort.split(text) {
        case .success(let p): parts = p
        case .failure(.unclosedBracket):
            value.error("\"\(text)\": missing ']' after the IPv6 address")
            return nil
        case .failure(.textAfterBracket):
            value.error("\"\(text)\": expected \":PORT\" after \"]\"")
            return nil
        }
        if parts.bracketed {
            guard Address.numeric(String(parts.host)) != nil, parts.host.contains(":") else {
                value.error("\"\(text)\": \"\(parts.host)\" is not an IPv6 address")
                return nil
            }
        }
        if parts.port != nil && parts.portNumber(in: 1...65535) == nil {
            value.error("\"\(text)\": the port must be a number between 1 and 65535")
            return nil
        }
        if !parts.bracketed && !ConfigTokens.isHostName(String(parts.host)) {
            value.error("\"\(text)\" is not a host name, e.g. \"abc123.lambda-url.eu-west-1.on.aws\" or \"api.example.com:8443\"")
            return nil
        }
        return text
    }
}
