// An upstream's (or a color's) `tls` object: how the proxy speaks TLS to its endpoints. Parsed
// here into plain values; the TLS client reads them when it connects.

extension Config {
    public struct UpstreamTLS: Sendable, Equatable {
        /// The name sent as SNI and checked against the certificate. nil: the upstream's
        /// `hostHeader`, else the endpoint's host name (see `Config.Upstream.sniName`).
        public var serverName: String? = nil
        /// CA certificates (PEM) to verify the endpoint's chain against; nil: the system store.
        public var caFile: String? = nil
        /// Verify the endpoint's certificate chain and host name.
        public var verify: Bool = true
        /// A client certificate and its key (PEM), both or neither.
        public var cert: String? = nil
        public var key: String? = nil

        public init(serverName: String? = nil, caFile: String? = nil, verify: Bool = true, cert: String? = nil,
                    key: String? = nil) {
            self.serverName = serverName
            self.caFile = caFile
            self.verify = verify
            self.cert = cert
            self.key = key
        }
    }
}

extension ConfigParser {
    /// `{ "serverName": NAME, "caFile": FILE, "verify": BOOL, "cert": FILE, "key": FILE }`.
    func upstreamTLS(_ value: ConfigValue) -> Config.UpstreamTLS? {
        guard let object = value.object(keys: ["serverName", "caFile", "verify", "cert", "key"]) else { return nil }
        var tls = Config.UpstreamTLS()
        if let field = object["serverName"], let name = field.nonEmptyString() {
            if ConfigTokens.isHostName(name) { tls.serverName = name } else { field.error("\"\(name)\" is not a host name") }
        }
        tls.caFile = object["caFile"]?.nonEmptyString()
        if let field = object["verify"], let verify = field.bool() { tls.verify = verify }
        tls.cert = object["cert"]?.nonEmptyString()
        tls.key = object["key"]?.nonEmptyString()
        if object.has("cert") != object.has("key") {
            object.error("a client certificate needs both \"cert\" and \"key\"")
        }
        return tls
    }
}

extension Config {
    /// Upstreams (or colors) that ask for TLS, which the proxy cannot speak to upstreams until
    /// the TLS client is wired in: `run` and `reload` refuse them rather than send requests,
    /// credentials included, in clear text to a TLS port. `check` accepts them. Remove this
    /// guard with the TLS client.
    func upstreamTLSNotSupported() -> [String] {
        var problems: [String] = []
        for upstream in upstreams {
            var paths: [String] = []
            if upstream.tls != nil { paths.append("upstreams.\(upstream.name).tls") }
            if let bg = upstream.blueGreen {
                if bg.blueSettings.tls != nil { paths.append("upstreams.\(upstream.name).blue.tls") }
                if bg.greenSettings.tls != nil { paths.append("upstreams.\(upstream.name).green.tls") }
            }
            for path in paths {
                problems.append("\(path): this build does not speak TLS to upstreams yet; remove the block to use plain HTTP")
            }
        }
        return problems
    }
}
