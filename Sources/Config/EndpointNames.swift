// Endpoints named by host name (function URLs, load balancers, anything whose addresses move):
// the resolver seam, the table of what each name resolved to, and which names a config has.
// A name endpoint stands for every address it resolves to, IPv4 and IPv6; the snapshot builder
// expands it, and NameWatcher keeps the table current.
import Glibc

/// One address a name resolved to.
public struct ResolvedAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Numeric IPv4 or IPv6 address, without brackets.
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `numeric:port`, with brackets for IPv6.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// IPv4 before IPv6, then by text: a stable order, so an answer that only reorders the same
    /// addresses (DNS round robin) is not a change.
    public static func < (a: ResolvedAddress, b: ResolvedAddress) -> Bool {
        let a6 = a.host.contains(":"), b6 = b.host.contains(":")
        if a6 != b6 { return !a6 }
        return (a.host, a.port) < (b.host, b.port)
    }
}

public struct ResolveFailure: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Resolves an endpoint's host name for its port: every address, or why there is none. Called
/// off the event loops (start, reload, a control command, the resolver thread); it may block.
/// Tests pass their own to change the answer.
public typealias Resolver = @Sendable (_ host: String, _ port: UInt16) -> Result<[ResolvedAddress], ResolveFailure>

public enum SystemResolver {
    /// getaddrinfo: every IPv4 and IPv6 address for a stream socket, each once, sorted. Asked
    /// first with AI_ADDRCONFIG (no IPv6 addresses on a host without IPv6, whose connects
    /// would only fail), then without it when that finds nothing (a host with loopback only,
    /// where AI_ADDRCONFIG hides every address); not again after a timeout (EAI_AGAIN).
    public static let resolve: Resolver = { host, port in
        let first = lookup(host, port, flags: AI_ADDRCONFIG)
        if case .failure(let failure) = first, failure.status != EAI_AGAIN {
            return lookup(host, port, flags: 0).mapError { $0.failure }
        }
        return first.mapError { $0.failure }
    }

    private struct LookupError: Error {
        var status: Int32
        var failure: ResolveFailure
    }

    private static func lookup(_ host: String, _ port: UInt16, flags: Int32) -> Result<[ResolvedAddress], LookupError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = flags
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let list else {
            let reason = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            return .failure(LookupError(status: status, failure: ResolveFailure(reason)))
        }
        defer { freeaddrinfo(list) }
        var found = Set<ResolvedAddress>()
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            let family = entry.pointee.ai_family
            if family == AF_INET || family == AF_INET6, let address = entry.pointee.ai_addr,
               let numeric = Address.format(address, entry.pointee.ai_addrlen) {
                found.insert(ResolvedAddress(host: numeric, port: port))
            }
            cursor = entry.pointee.ai_next
        }
        guard !found.isEmpty else { return .failure(LookupError(status: EAI_NONAME, failure: ResolveFailure("no IPv4 or IPv6 address"))) }
        return .success(found.sorted())
    }
}

/// What every name endpoint resolved to, by endpoint as written (`api.example.com:443`).
public struct ResolvedNames: Sendable, Equatable {
    /// Sorted, never empty: a name whose re-resolution fails keeps its last known addresses.
    public var addresses: [String: [ResolvedAddress]] = [:]
    /// Why a name that never resolved has no address (the last failure).
    public var failures: [String: String] = [:]
    /// A name endpoint without addresses is a build error (a running proxy: `run`, reload,
    /// commands); otherwise it is left out of the snapshot (`check`, which needs no DNS).
    public var required: Bool

    public init(required: Bool = false) { self.required = required }

    /// The EndpointRegistry key, metrics label and `show` name of one address of a name
    /// endpoint: the name as written, then the address (`api.example.com:443@192.0.2.7:443`).
    public static func key(_ written: String, _ address: ResolvedAddress) -> String { "\(written)@\(address)" }

    /// The registry keys `address` stands for: itself when numeric, each resolved address of
    /// a name.
    public func keys(for address: Address) -> [String] {
        guard address.hostName != nil else { return [address.description] }
        return (addresses[address.written] ?? []).map { Self.key(address.written, $0) }
    }

    /// Resolves, now, each name of `endpoints` that has no addresses yet; a failure is kept
    /// in `failures` for the build to report.
    package mutating func resolveMissing(_ endpoints: [NameEndpoint], with resolver: Resolver) {
        for e in endpoints where addresses[e.written] == nil {
            switch resolver(e.host, e.port) {
            case .success(let found) where !found.isEmpty:
                addresses[e.written] = found.sorted()
                failures[e.written] = nil
            case .success:
                failures[e.written] = "no IPv4 or IPv6 address"
            case .failure(let failure):
                failures[e.written] = failure.reason
            }
        }
    }

    /// Forgets names no endpoint of `endpoints` has any more (a name added again later is
    /// resolved afresh).
    package mutating func keepOnly(_ endpoints: [NameEndpoint]) {
        let wanted = Set(endpoints.map(\.written))
        addresses = addresses.filter { wanted.contains($0.key) }
        failures = failures.filter { wanted.contains($0.key) }
    }
}

/// One name endpoint of a config (each name once, however many pools list it).
public struct NameEndpoint: Sendable, Equatable {
    /// `host:port` as written: the key of `ResolvedNames`.
    public var written: String
    public var host: String
    public var port: UInt16
    /// How often to resolve it again: the shortest `resolveEveryMs` of the upstreams listing it.
    public var everyMs: Int
}

extension Config {
    /// Every endpoint named by host name, in every pool (both colors of blue/green upstreams),
    /// each once.
    public var nameEndpoints: [NameEndpoint] {
        var order: [String] = []
        var byName: [String: NameEndpoint] = [:]
        for upstream in upstreams {
            let pools: [Pool]
            switch upstream.kind {
            case .pool(let pool): pools = [pool]
            case .blueGreen(let bg): pools = [bg.blue, bg.green]
            }
            for pool in pools {
                for e in pool.endpoints {
                    guard let host = e.address.hostName else { continue }
                    let written = e.address.written
                    if var known = byName[written] {
                        known.everyMs = min(known.everyMs, upstream.resolveEveryMs)
                        byName[written] = known
                    } else {
                        order.append(written)
                        byName[written] = NameEndpoint(written: written, host: host, port: e.address.port,
                                                       everyMs: upstream.resolveEveryMs)
                    }
                }
            }
        }
        return order.map { byName[$0]! }
    }
}

/// `check`'s look at endpoint host names: each name tried once, whatever number of pools list it.
final class NameCheck {
    private let resolver: Resolver
    private var failures: [String: String?] = [:]

    init(_ resolver: @escaping Resolver) { self.resolver = resolver }

    /// Why `host` has no address, or nil when it resolves.
    func failure(_ host: String, _ port: UInt16) -> String? {
        let key = host.lowercased()
        if let known = failures[key] { return known }
        var failure: String?
        switch resolver(host, port) {
        case .success(let found): failure = found.isEmpty ? "no IPv4 or IPv6 address" : nil
        case .failure(let f): failure = f.reason
        }
        failures[key] = failure
        return failure
    }
}
