// Loading a config file: read, parse, validate every section and report all problems at once.
// Also owns the small top-level sections (workers, listeners, limits, timeouts, control, admin).
import Foundation
import Glibc
import Routing

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// One problem each: `file:line: key.path: reason`.
    public var messages: [String]

    public init(messages: [String]) { self.messages = messages }

    public var description: String { messages.joined(separator: "\n") }
}

public struct ConfigLoadResult: Sendable {
    public var config: Config
    /// Not errors: an upstream no route uses (it may be staged), a mirror to a route's own
    /// upstream.
    public var warnings: [String]
    /// The certificates, keys, CA files and secrets the config names, read again at a reload.
    public var files: [NamedFile]

    public init(config: Config, warnings: [String], files: [NamedFile] = []) {
        self.config = config
        self.warnings = warnings
        self.files = files
    }
}

/// A file the config names, and where (`file:line: key.path`).
public struct NamedFile: Sendable, Equatable {
    public var path: String
    public var location: String
}

public enum ConfigLoader {
    /// `resolvingNames`: try each endpoint host name with it and warn about those that do not
    /// resolve (`check`); without it no name is looked up.
    public static func load(path: String, resolvingNames resolver: Resolver? = nil) throws(ConfigError) -> ConfigLoadResult {
        switch ConfigFiles.readWithOwner(path) {
        case .success(let file):
            let loaded = try parse(bytes: file.bytes, file: path, resolvingNames: resolver)
            if let problem = trustProblem(path, owner: file.owner, mode: file.mode, serviceUID: loaded.config.serviceAccount?.uid),
               getenv(allowUntrustedVariable) == nil {
                throw ConfigError(messages: ["\(path): \(problem); whoever can write it reconfigures the proxy (set "
                    + "\(allowUntrustedVariable)=1 in the environment to run it anyway)"])
            }
            return loaded
        case .failure(let reason): throw ConfigError(messages: ["\(path): cannot read: \(reason)"])
        }
    }

    /// Set in the environment, a config file that fails the trust check is used anyway.
    public static let allowUntrustedVariable = "SWITCHYARD_ALLOW_UNTRUSTED_CONFIG"

    /// The state file's rules for the config (read from the file that was opened): owned by
    /// this process's user, root or the service user, writable by its owner only, in a
    /// directory no other user can replace it in (a sticky one will do: only its owner may
    /// rename or remove it there). A world-writable config watched for changes let another
    /// user's edit be applied 1.3 s later.
    static func trustProblem(_ path: String, owner: UInt32, mode: Int, serviceUID: uid_t?) -> String? {
        FileTrust.writerProblem("the config file", owner: owner, mode: mode, serviceUID: serviceUID)
            ?? FileTrust.directoryProblem(FileTrust.directory(of: path), holding: "config file", stickyIsEnough: true, serviceUID: serviceUID)
    }

    /// `file` names the source in messages.
    public static func parse(data: Data, file: String) throws(ConfigError) -> ConfigLoadResult {
        try parse(bytes: [UInt8](data), file: file)
    }

    static func parse(bytes: [UInt8], file: String, resolvingNames resolver: Resolver? = nil) throws(ConfigError) -> ConfigLoadResult {
        let root: JSONNode
        do throws(JSONSyntaxError) {
            root = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(messages: ["\(file):\(error.line):\(error.column): \(error.reason)"])
        }
        let diagnostics = Diagnostics(file: file)
        let config = ConfigParser(diagnostics: diagnostics, nameCheck: resolver.map(NameCheck.init))
            .config(ConfigValue(node: root, path: .root, diagnostics: diagnostics))
        guard diagnostics.errors.isEmpty else { throw ConfigError(messages: diagnostics.errorsInFileOrder) }
        return ConfigLoadResult(config: config, warnings: diagnostics.warningsInFileOrder, files: diagnostics.files)
    }
}

/// Turns a parsed document into a `Config`, one section at a time. With errors the result is
/// incomplete and only the diagnostics matter.
package struct ConfigParser {
    let diagnostics: Diagnostics
    /// Tries endpoint host names (`check`); nil: no DNS while parsing.
    var nameCheck: NameCheck? = nil
    /// The group of "user"/"group": a secret file readable by that group only is how it stays
    /// readable after the drop, not a warning.
    var serviceGroup: gid_t? = nil
    /// The uid of "user": a secret file it owns is trusted like one this process owns.
    var serviceUID: uid_t? = nil

    func config(_ root: ConfigValue) -> Config {
        var config = Config()
        guard let object = root.object(keys: ["workers", "listeners", "limits", "timeouts", "upstreams", "routes",
                                              "control", "admin", "trustForwardedFrom", "user", "group", "watchConfig",
                                              "accessLog", "tracing", "fleet", "hooks"])
        else { return config }
        // "user" first: a key file its group may read is fine when that is the service's group.
        operations(object, into: &config)
        var parser = self
        parser.serviceGroup = config.serviceAccount?.gid
        parser.serviceUID = config.serviceAccount?.uid
        parser.sections(object, into: &config)
        return config
    }

    private func sections(_ object: ConfigObject, into config: inout Config) {
        config.workers = object.int("workers", default: 0, 0...256)
        if let value = object.required("listeners") { config.listeners = listeners(value) }
        if let value = object["limits"] { config.limits = limits(value) }
        if let value = object["timeouts"] { config.timeouts = timeouts(value) }
        var declared = DeclaredUpstreams()
        if let value = object.required("upstreams") { (config.upstreams, declared) = upstreams(value) }
        if let value = object.required("routes") { config.routes = routes(value, upstreams: declared.names) }
        if let value = object["control"] { config.control = control(value) }
        if let value = object["admin"] { config.admin = admin(value, listeners: config.listeners) }
        if let value = object["trustForwardedFrom"] { config.trustForwardedFrom = cidrs(value) }
        if let value = object["accessLog"] { config.accessLog = accessLog(value) }
        if let value = object["tracing"] { config.tracing = tracing(value) }
        if let value = object["hooks"] { config.hooks = hooks(value) }
        if let value = object["fleet"] {
            config.fleet = fleet(value)
            if config.control?.stateFile != nil, config.fleet != nil {
                value.warning("in fleet mode the runtime state lives in etcd: control.stateFile is not read or written")
            }
        }

        let used = config.referencedUpstreams
        for name in declared.names where !used.contains(name) {
            diagnostics.warning(ConfigPath.root.key("upstreams").key(name), line: declared.lines[name],
                                "not used by any route (staged?)")
        }
    }

    /// An address the proxy listens on: port 0 (a free port the kernel picks) is allowed.
    func listenAddress(_ value: ConfigValue) -> Address? { address(value, listening: true) }

    private func address(_ value: ConfigValue, listening: Bool) -> Address? {
        guard let text = value.string() else { return nil }
        do throws(AddressError) {
            return try Address(parsing: text, allowPortZero: listening)
        } catch {
            value.error(error.reason)
            return nil
        }
    }

    /// A header name (an HTTP token), as written.
    func headerName(_ value: ConfigValue) -> String? {
        guard let name = value.string() else { return nil }
        guard ConfigTokens.isToken(name) else {
            value.error("\"\(name)\" is not a valid header name")
            return nil
        }
        return name
    }

    /// An optional header-name key whose `null` disables the feature.
    func optionalHeaderName(_ object: ConfigObject, _ key: String, default fallback: String) -> String? {
        guard let value = object[key] else { return fallback }
        return value.isNull ? nil : headerName(value)
    }

    private func listeners(_ value: ConfigValue) -> [Config.Listener] {
        guard let elements = value.array() else { return [] }
        if elements.isEmpty { value.error("must list at least one listener") }
        var listeners: [Config.Listener] = []
        var seen: [String: Int] = [:]  // by resolved address: "localhost:80" is "127.0.0.1:80"
        for (index, element) in elements.enumerated() {
            guard let object = element.object(keys: ["address", "tls"]),
                  let address = object.required("address").flatMap(listenAddress)
            else { continue }
            let tls = object["tls"].flatMap(listenerTLS)
            if object.has("tls") && tls == nil { continue }
            if address.port != 0, let first = seen[address.description] {
                element.error("duplicate listener address \(address) (also listeners[\(first)])")
            }
            seen[address.description] = seen[address.description] ?? index
            listeners.append(Config.Listener(address: address, tls: tls))
        }
        return listeners
    }

    private func limits(_ value: ConfigValue) -> Config.Limits {
        var limits = Config.Limits()
        guard let object = value.object(keys: ["maxConnections", "maxHeaderBytes", "maxHeaders", "maxUriBytes",
                                               "maxBodyBytes", "bufferBodyBytes", "maxResponseHeaderBytes", "maxResponseHeaders"])
        else { return limits }
        let positive = 1...Int.max
        // Workers divide it with an addition first (Worker.swift): Int.max would overflow there.
        limits.maxConnections = object.int("maxConnections", default: limits.maxConnections, 1...100_000_000)
        limits.maxHeaderBytes = object.int("maxHeaderBytes", default: limits.maxHeaderBytes, positive)
        limits.maxHeaders = object.int("maxHeaders", default: limits.maxHeaders, positive)
        limits.maxUriBytes = object.int("maxUriBytes", default: limits.maxUriBytes, positive)
        limits.maxBodyBytes = object.int("maxBodyBytes", default: limits.maxBodyBytes, 0...Int.max)
        // Held per client connection while its body arrives: bounded like a response head.
        limits.bufferBodyBytes = object.int("bufferBodyBytes", default: limits.bufferBodyBytes, 0...16_777_216)
        limits.maxResponseHeaderBytes = object.int("maxResponseHeaderBytes", default: limits.maxResponseHeaderBytes, 1...16_777_216)
        limits.maxResponseHeaders = object.int("maxResponseHeaders", default: limits.maxResponseHeaders, 1...10_000)
        return limits
    }

    private func timeouts(_ value: ConfigValue) -> Config.Timeouts {
        var timeouts = Config.Timeouts()
        guard let object = value.object(keys: ["connectMs", "headerMs", "responseMs", "idleMs", "upstreamIdleMs",
                                               "drainMs", "handshakeMs", "tunnelMs", "readMs", "bodyMs"])
        else { return timeouts }
        // A week at most: deadlines are added to clocks and scaled to nanoseconds downstream.
        let positive = 1...604_800_000
        timeouts.connectMs = object.int("connectMs", default: timeouts.connectMs, positive)
        timeouts.headerMs = object.int("headerMs", default: timeouts.headerMs, positive)
        timeouts.responseMs = object.int("responseMs", default: timeouts.responseMs, positive)
        timeouts.idleMs = object.int("idleMs", default: timeouts.idleMs, positive)
        timeouts.upstreamIdleMs = object.int("upstreamIdleMs", default: timeouts.upstreamIdleMs, positive)
        timeouts.drainMs = object.int("drainMs", default: timeouts.drainMs, positive)
        timeouts.handshakeMs = object.int("handshakeMs", default: timeouts.handshakeMs, positive)
        timeouts.tunnelMs = object.int("tunnelMs", default: timeouts.tunnelMs, positive)
        timeouts.readMs = object.int("readMs", default: timeouts.readMs, positive)
        timeouts.bodyMs = object.int("bodyMs", default: timeouts.bodyMs, positive)
        return timeouts
    }

    private func control(_ value: ConfigValue) -> Config.ControlSocket {
        var control = Config.ControlSocket()
        guard let object = value.object(keys: ["socket", "mode", "forceMode", "stateFile", "idleTimeoutMs"]) else { return control }
        if let socket = object["socket"]?.nonEmptyString() { control.socket = socket }
        control.forceMode = object["forceMode"]?.bool() ?? false
        if let mode = object["mode"] {
            let text = mode.node.isString ? mode.string() : nil
            if let text, (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }),
               let bits = Int(text, radix: 8) {
                control.mode = bits
                // Whoever can connect can change what is served: connecting needs write access.
                if bits & 0o002 != 0 {
                    if control.forceMode {
                        mode.warning("\"\(text)\" lets every local user change the proxy through the control socket (forceMode is set)")
                    } else {
                        mode.error("\"\(text)\" lets every local user change the proxy through the control socket; "
                            + "use \"0600\" (owner) or \"0660\" (owner and group), or set \"forceMode\": true to mean it")
                    }
                } else if bits & 0o020 != 0 {
                    mode.warning("\"\(text)\" lets members of the socket's group change the proxy through the control socket")
                }
            } else {
                mode.error("expected an octal string like \"0600\", got \(text.map { "\"\($0)\"" } ?? mode.node.kindDescription)")
            }
        }
        if let stateFile = object["stateFile"] { control.stateFile = stateFile.nonEmptyString() }
        control.idleTimeoutMs = object.int("idleTimeoutMs", default: control.idleTimeoutMs, 1...86_400_000)
        return control
    }

    private func admin(_ value: ConfigValue, listeners: [Config.Listener]) -> Config.Admin? {
        guard let object = value.object(keys: ["address", "maxConnections"]) else { return nil }
        let maxConnections = object.int("maxConnections", default: 64, 1...65_536)
        guard let field = object["address"] else {
            return (try? Address(parsing: "127.0.0.1:9901")).map { Config.Admin(address: $0, maxConnections: maxConnections) }
        }
        guard let address = listenAddress(field) else { return nil }
        if address.port != 0, let index = listeners.firstIndex(where: { $0.address.description == address.description }) {
            field.error("\(address) is also listeners[\(index)]")
        }
        if !address.isLoopback {
            // /metrics names every endpoint address, route and variant, dark ones included.
            field.warning("\(address.written) is not a loopback address: whoever can reach it reads /metrics, "
                + "which lists every endpoint address and every variant, weight-0 ones included; keep the admin "
                + "listener on 127.0.0.1 or ::1, or let only the kubelet and Prometheus reach its port")
        }
        return Config.Admin(address: address, maxConnections: maxConnections)
    }
}

extension JSONNode {
    var isString: Bool { if case .string = value { return true } else { return false } }
}

/// Reading whole files (the config, sticky secrets) with the system's reason on failure.
package enum ConfigFiles {
    package static func read(_ path: String) -> Result<[UInt8], ReadFailure> {
        readWithOwner(path).map(\.bytes)
    }

    /// The bytes, and the owner and permission bits of the file they were read from (the same
    /// open file, so nothing can be swapped in between).
    static func readWithOwner(_ path: String) -> Result<(bytes: [UInt8], owner: UInt32, group: UInt32, mode: Int), ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(ReadFailure(errno: errno)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            if count == 0 { return .success((bytes, st.st_uid, st.st_gid, Int(st.st_mode) & 0o7777)) }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    package struct ReadFailure: Error, CustomStringConvertible {
        package var errno: Int32
        package var description: String { String(cString: strerror(errno)) }
    }
}
