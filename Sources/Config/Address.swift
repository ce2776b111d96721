// `host:port` addresses of listeners, endpoints and the admin listener: parsing, and resolving
// the host names of listening addresses with getaddrinfo once, when the config is loaded. An
// endpoint's host name is kept as written: it is resolved (to every address it has) when the
// proxy runs, and again every `resolveEveryMs` (EndpointNames.swift, NameWatcher.swift).
import Glibc
import Routing

public struct AddressError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

public struct Address: Sendable, Hashable, CustomStringConvertible {
    /// The host as written: a name or a numeric address, without brackets.
    public let host: String
    public let port: UInt16
    /// The numeric address: `host` itself when numeric (canonical form), the address a
    /// listening address's name resolved to; nil for an endpoint named by host name.
    public let numericHost: String?
    /// `numeric:port`, with brackets for IPv6, or `name:port` for an endpoint named by host
    /// name: the identity of an endpoint in the config, the state file and control commands
    /// (a numeric one is also its EndpointRegistry key). Formatted once: pools of thousands
    /// look endpoints up by it.
    public let description: String
    /// `host:port` as written in the config.
    public let written: String

    public init(host: String, port: UInt16, numericHost: String?) {
        self.host = host
        self.port = port
        self.numericHost = numericHost
        written = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let numericHost {
            description = numericHost.contains(":") ? "[\(numericHost)]:\(port)" : "\(numericHost):\(port)"
        } else {
            description = written
        }
    }

    /// Parses `host:port`, `[v6]:port`, `0.0.0.0:80`, and resolves the host. A name with both
    /// IPv4 and IPv6 addresses resolves to its first IPv4 one (loopback upstreams usually listen
    /// on 127.0.0.1 while `localhost` may list ::1 first). `allowPortZero` is for addresses the
    /// proxy listens on, where port 0 lets the kernel choose (tests never bind fixed ports).
    public init(parsing text: String, allowPortZero: Bool = false) throws(AddressError) {
        let (host, port, bracketed) = try Self.split(text, allowPortZero: allowPortZero)
        self.init(host: host, port: port, numericHost: try Self.resolve(host, numericOnly: bracketed))
    }

    /// Parses an endpoint's `host:port` without asking DNS: a numeric host is checked and made
    /// canonical, a host name is kept as written (`numericHost` nil) for the resolver.
    public init(endpoint text: String) throws(AddressError) {
        let (host, port, bracketed) = try Self.split(text, allowPortZero: false)
        if bracketed {
            self.init(host: host, port: port, numericHost: try Self.resolve(host, numericOnly: true))
        } else {
            self.init(host: host, port: port, numericHost: Self.numeric(host))
        }
    }

    /// The host as written when it is a name to resolve (an endpoint's), nil when numeric.
    public var hostName: String? { numericHost == nil ? host : nil }

    public var isIPv6: Bool { numericHost?.contains(":") ?? false }

    /// Whether only this host can reach the address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z.
    public var isLoopback: Bool {
        guard let h = numericHost?.lowercased() else { return false }
        return h.hasPrefix("127.") || h == "::1" || h == "0:0:0:0:0:0:0:1" || h.hasPrefix("::ffff:127.")
    }

    /// The canonical form of a numeric IPv4 or IPv6 `host` (no DNS); nil for a name.
    static func numeric(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let list else { return nil }
        defer { freeaddrinfo(list) }
        return format(list.pointee.ai_addr, list.pointee.ai_addrlen)
    }

    /// `getnameinfo` with NI_NUMERICHOST: the numeric text of a socket address.
    static func format(_ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func split(_ text: String, allowPortZero: Bool) throws(AddressError) -> (host: String, port: UInt16, bracketed: Bool) {
        let example = "expected \"host:port\", e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""
        let parts: HostPort
        switch HostPort.split(text) {
        case .success(let p): parts = p
        case .failure(.unclosedBracket): throw AddressError(reason: "\"\(text)\": missing ']' after the IPv6 address")
        case .failure(.textAfterBracket): throw AddressError(reason: "\"\(text)\": missing port; \(example)")
        }
        guard parts.port != nil else { throw AddressError(reason: "\"\(text)\": missing port; \(example)") }
        if !parts.bracketed && parts.host.contains(":") {
            throw AddressError(reason: "\"\(text)\": put an IPv6 address in brackets, e.g. \"[::1]:8080\"")
        }
        guard !parts.host.isEmpty else { throw AddressError(reason: "\"\(text)\": missing host; \(example)") }
        guard let port = parts.portNumber(in: (allowPortZero ? 0 : 1)...65535) else {
            throw AddressError(reason: "\"\(text)\": port must be a number between \(allowPortZero ? 0 : 1) and 65535")
        }
        if !parts.bracketed && !ConfigTokens.isHostName(String(parts.host)) {
            throw AddressError(reason: "\"\(text)\": invalid host \"\(parts.host)\"")
        }
        return (String(parts.host), port, parts.bracketed)
    }

    private static func resolve(_ host: String, numericOnly: Bool) throws(AddressError) -> String {
        var hints = addrinfo()
        hints.ai_family = numericOnly ? AF_INET6 : AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = numericOnly ? AI_NUMERICHOST : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let list else {
            let reason = String(cString: gai_strerror(status))
            throw AddressError(reason: numericOnly ? "\"\(host)\" is not an IPv6 address" : "cannot resolve \"\(host)\": \(reason)")
        }
        defer { freeaddrinfo(list) }
        var chosen: UnsafeMutablePointer<addrinfo>?
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if entry.pointee.ai_family == AF_INET { chosen = entry; break }
            if chosen == nil && entry.pointee.ai_family == AF_INET6 { chosen = entry }
            cursor = entry.pointee.ai_next
        }
        guard let chosen else { throw AddressError(reason: "\"\(host)\" has no IPv4 or IPv6 address") }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let rc = getnameinfo(chosen.pointee.ai_addr, chosen.pointee.ai_addrlen, &buffer, socklen_t(buffer.count),
                             nil, 0, NI_NUMERICHOST)
        guard rc == 0 else {
            throw AddressError(reason: "cannot format the address of \"\(host)\": \(String(cString: gai_strerror(rc)))")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
