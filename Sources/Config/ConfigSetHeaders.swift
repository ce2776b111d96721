// `setHeaders`: header fields the proxy sends on every request to an upstream (or one color of
// it), each value read from a secret file or environment variable: a function key
// (`x-functions-key`) that keeps a function endpoint closed to everyone but the router.
import Routing

extension Config {
    /// One field set on every request to an upstream; a client's field of the same name is
    /// dropped. Printing it names the field and where its value comes from, never the value.
    public struct SetHeader: Sendable, Equatable, CustomStringConvertible {
        /// As written in the config.
        public var name: String
        public var value: Secret

        public init(name: String, value: Secret) {
            self.name = name
            self.value = value
        }

        public var description: String {
            switch value.source {
            case .file(let path): return "\(name) from file \(path)"
            case .environment(let variable): return "\(name) from env \(variable)"
            }
        }

        /// Fields the proxy writes itself (framing, Host, forwarding, tracing, the shadow mark)
        /// or that are hop-by-hop: a set value would be dropped or would break the request.
        public static let reservedNames: Set<String> = Mirror.unstrippableHeaders.union([
            "te", "upgrade", "trailer", "keep-alive", "proxy-connection", "traceparent", "tracestate", "expect",
        ])
    }
}

extension Config.Upstream {
    /// The fields set on requests to the pool `color` names (nil for a plain upstream): the
    /// color's own list when it has one, else the upstream's.
    public func setHeaders(_ color: Color?) -> [Config.SetHeader] {
        if let color, let bg = blueGreen, let own = bg.settings(color).setHeaders { return own }
        return setHeaders
    }
}

extension ConfigParser {
    /// A secret header's value: any non-empty value, sent as the proxy's own credential.
    private static let headerValue = SecretUse(minimumBytes: 1, exposure: "call the upstream as the proxy", trustedWriterOnly: true)

    /// `{ NAME: { "file": PATH } | { "env": VARIABLE }, ... }`.
    func setHeaders(_ value: ConfigValue) -> [Config.SetHeader] {
        guard let map = value.map() else { return [] }
        var headers: [Config.SetHeader] = []
        var seen: [String: String] = [:]   // lowercased name to the name as written
        for (name, field) in map.entries {
            guard ConfigTokens.isToken(name) else {
                field.error("\"\(name)\" is not a valid header name")
                continue
            }
            let lowered = name.lowercased()
            if Config.SetHeader.reservedNames.contains(lowered) {
                field.error("\(name) is written by the proxy itself or is hop-by-hop; it cannot be set")
                continue
            }
            if let other = seen[lowered] {
                field.error("the same header as \"\(other)\" (names are case-insensitive)")
                continue
            }
            seen[lowered] = name
            guard let object = field.object(keys: ["file", "env"]) else { continue }
            let count = object.atMostOne(of: ["file", "env"])
            if count == 0 { object.error("needs \"file\" or \"env\"") }
            guard count == 1 else { continue }
            let secret: Config.Secret?
            if let source = object["file"] {
                secret = secretFile(source, for: Self.headerValue).flatMap { checkedValue($0, at: source, from: "the file") }
            } else if let source = object["env"] {
                secret = secretEnv(source, for: Self.headerValue).flatMap { checkedValue($0, at: source, from: "the variable") }
            } else {
                secret = nil
            }
            if let secret { headers.append(Config.SetHeader(name: name, value: secret)) }
        }
        return headers
    }

    /// The secret when it can be a field value (RFC 9110 5.5); otherwise an error that says
    /// where and why, never what the value is.
    private func checkedValue(_ secret: Config.Secret, at value: ConfigValue, from source: String) -> Config.Secret? {
        guard let problem = Self.fieldValueProblem(secret.bytes) else { return secret }
        value.error("\(source) holds \(problem); a header value cannot (the trailing newline is dropped, nothing else is)")
        return nil
    }

    /// Why `bytes` cannot be sent as a field value, or nil: a CR or LF would end the field
    /// and start another one upstream; other control bytes are refused by servers; spaces
    /// around the value are dropped by the receiver, so the value sent would not be the one read.
    package static func fieldValueProblem(_ bytes: [UInt8]) -> String? {
        for (index, byte) in bytes.enumerated() {
            if byte == 0x0D || byte == 0x0A { return "a line break (byte \(index + 1) of \(bytes.count))" }
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F {
                let hex = String(byte, radix: 16, uppercase: true)
                return "control byte 0x\(hex.count == 1 ? "0" + hex : hex) (byte \(index + 1) of \(bytes.count))"
            }
        }
        if let first = bytes.first, let last = bytes.last, first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 {
            return "a space or tab at its start or end"
        }
        return nil
    }
}
