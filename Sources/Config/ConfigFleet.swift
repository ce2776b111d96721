// The `fleet` section: instances that share their runtime state through etcd. The config file
// stays each instance's base; what the control socket changes (weights, live colors, endpoint
// edits, mirrors, rollouts) lives under `prefix` in etcd instead of the state file, and every
// instance watches it.
import Glibc
import Routing
import TLS

extension Config {
    public struct Fleet: Sendable, Equatable {
        /// etcd's client URLs (`http://` or `https://HOST:PORT`).
        public var endpoints: [HTTPURL]
        /// Every key lives under it; ends with "/".
        public var prefix: String
        /// For https endpoints: the CA that signed etcd's certificate, a client certificate.
        public var tls: TLSClientSettings
        public var username: Secret?
        public var password: Secret?
        /// This instance's name in `show fleet`; the host name by default.
        public var instance: String
        /// The membership key's lease: an instance that stops renewing it leaves the list, and
        /// a driver that dies hands over, within this many seconds.
        public var leaseSeconds: Int
        /// An instance that has not applied a revision this long after it was written is a straggler.
        public var stragglerMs: Int

        public static let defaultLeaseSeconds = 5
        public static let defaultStragglerMs = 2_000

        public init(endpoints: [HTTPURL], prefix: String, instance: String) {
            self.endpoints = endpoints
            self.prefix = prefix
            self.tls = TLSClientSettings()
            self.instance = instance
            self.leaseSeconds = Self.defaultLeaseSeconds
            self.stragglerMs = Self.defaultStragglerMs
        }

        /// The host name, for an instance that names none.
        public static func hostName() -> String {
            var buffer = [CChar](repeating: 0, count: 256)
            guard gethostname(&buffer, buffer.count - 1) == 0 else { return "switchyard" }
            let name = String(cString: buffer)
            return isInstanceName(name) ? name : "switchyard"
        }

        /// Letters, digits, ".", "_" and "-", at most 128 bytes: it becomes part of a key.
        public static func isInstanceName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
            }
        }
    }
}

extension ConfigParser {
    /// `"fleet": { "etcd": { "endpoints": [URL...], "prefix": "/switchyard/prod/", "tls": {...},
    /// "usernameFile": PATH, "passwordFile": PATH }, "instance": NAME, "leaseSeconds": 5 }`
    func fleet(_ value: ConfigValue) -> Config.Fleet? {
        guard let object = value.object(keys: ["etcd", "instance", "leaseSeconds", "stragglerMs"]),
              let etcdValue = object.required("etcd"),
              let etcd = etcdValue.object(keys: ["endpoints", "prefix", "tls", "usernameFile", "passwordFile"]) else { return nil }
        var failed = false
        var endpoints: [HTTPURL] = []
        if let list = etcd.required("endpoints"), let elements = list.array() {
            if elements.isEmpty { list.error("must list at least one etcd client URL") }
            for element in elements {
                guard let text = element.nonEmptyString() else { failed = true; continue }
                guard let url = HTTPURL(text), url.path.isEmpty || url.path == "/" else {
                    element.error("\"\(text)\" is not an etcd client URL (http://HOST:PORT or https://HOST:PORT, no path)")
                    failed = true
                    continue
                }
                endpoints.append(url)
            }
        } else {
            failed = true
        }
        var prefix = "/switchyard/"
        if let field = etcd.required("prefix"), let text = field.nonEmptyString() {
            if !text.hasPrefix("/") || !text.hasSuffix("/") || text.utf8.count > 512
                || !text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                field.error("must start and end with \"/\" and hold printable ASCII only (like \"/switchyard/prod/\"), got \"\(text)\"")
                failed = true
            }
            prefix = text
        } else {
            failed = true
        }
        var fleet = Config.Fleet(endpoints: endpoints, prefix: prefix, instance: Config.Fleet.hostName())
        if let field = etcd["tls"] {
            if let tls = upstreamTLS(field) { fleet.tls = tls } else { failed = true }
            if endpoints.contains(where: { !$0.secure }) { field.warning("\"tls\" applies to https:// endpoints only; the http:// ones are plain") }
        }
        let credential = SecretUse(minimumBytes: 1, exposure: "change the whole fleet's routing through etcd", trustedWriterOnly: true)
        if let field = etcd["usernameFile"] { fleet.username = secretFile(field, for: credential); if fleet.username == nil { failed = true } }
        if let field = etcd["passwordFile"] { fleet.password = secretFile(field, for: credential); if fleet.password == nil { failed = true } }
        if (fleet.username == nil) != (fleet.password == nil) && !failed {
            etcdValue.error("etcd auth needs both \"usernameFile\" and \"passwordFile\"")
            failed = true
        }
        if let field = object["instance"], let name = field.nonEmptyString() {
            if Config.Fleet.isInstanceName(name) { fleet.instance = name } else {
                field.error("must be letters, digits, \".\", \"_\" and \"-\" (at most 128), got \"\(name)\"")
                failed = true
            }
        }
        fleet.leaseSeconds = object.int("leaseSeconds", default: Config.Fleet.defaultLeaseSeconds, 2...60)
        fleet.stragglerMs = object.int("stragglerMs", default: Config.Fleet.defaultStragglerMs, 100...600_000)
        return failed ? nil : fleet
    }
}
