// Who an upstream says it is: the Host header sent to it (`hostHeader`, for function endpoints
// and virtual hosts that route on Host), set on the upstream or on one color of a blue/green
// upstream, and the name TLS sends as SNI.
import Routing

extension Config {
    /// What one color of a blue/green upstream sets for itself; nil falls back to the upstream.
    public struct ColorSettings: Sendable, Equatable {
        public var hostHeader: String? = nil
        public var tls: UpstreamTLS? = nil
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
        if value.hasPrefix("[") { return value.firstIndex(of: "]").map { String(value[...$0]) } ?? value }
        return value.lastIndex(of: ":").map { String(value[..<$0]) } ?? value
    }
}

extension ConfigParser {
    /// A Host header value: `name`, `name:port`, an IPv4 address or a bracketed IPv6 one,
    /// optionally with a port.
    func hostHeader(_ value: ConfigValue) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        var host = Substring(text)
        var port: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                value.error("\"\(text)\": missing ']' after the IPv6 address")
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    value.error("\"\(text)\": expected \":PORT\" after \"]\"")
                    return nil
                }
                port = rest.dropFirst()
            }
            guard Address.numeric(String(host)) != nil, host.contains(":") else {
                value.error("\"\(text)\": \"\(host)\" is not an IPv6 address")
                return nil
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        if let port, !(port.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } && (1...65535).contains(Int(port) ?? 0)) {
            value.error("\"\(text)\": the port must be a number between 1 and 65535")
            return nil
        }
        if !text.hasPrefix("[") && !ConfigTokens.isHostName(String(host)) {
            value.error("\"\(text)\" is not a host name, e.g. \"abc123.lambda-url.eu-west-1.on.aws\" or \"api.example.com:8443\"")
            return nil
        }
        return text
    }
}
