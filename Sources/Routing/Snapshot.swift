// The immutable routing table every request reads once. Built off the hot path (by Control's
// snapshot builder), then frozen and swapped in with one reference store.

/// Names are kept as bytes so the request path compares bytes, never Strings.
public typealias Bytes = [UInt8]

public enum Color: UInt8, Sendable, Equatable {
    case blue, green

    public var name: String { self == .blue ? "blue" : "green" }
    public var other: Color { self == .blue ? .green : .blue }
}

/// One upstream endpoint. `id` is stable for an address across snapshots (assigned by the
/// builder), so per-loop connection pools can be arrays indexed by it.
public struct Endpoint: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var weight: Int
    public var id: Int
    /// A draining endpoint takes no new requests; in-flight ones finish.
    public var draining: Bool
    /// The host name the endpoint was written with (`host` is one address it resolved to);
    /// nil for an endpoint written as an address. The default name for TLS SNI.
    public var hostName: String?

    public init(host: String, port: UInt16, weight: Int = 1, id: Int, draining: Bool = false, hostName: String? = nil) {
        self.host = host
        self.port = port
        self.weight = weight
        self.id = id
        self.draining = draining
        self.hostName = hostName
    }

    /// "host:port", with brackets around IPv6 hosts.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct Pool: Sendable, Equatable {
    public var endpoints: [Endpoint]
    /// The Host sent to this pool instead of the client's (which goes in X-Forwarded-Host);
    /// nil passes the client's. The request path reads the frozen bytes
    /// (`Snapshot.hostHeader(upstream:color:)`). SNI is the upstream's `tls.serverName`, else
    /// `hostHeaderName` (this without its port), else the endpoint's `hostName`.
    public var hostHeader: String?
    /// Fields sent on every request to this pool, replacing a client's of the same name
    /// (`Snapshot.setHeaders(upstream:color:)`).
    public var setHeaders: [SetHeader]

    public init(endpoints: [Endpoint], hostHeader: String? = nil, setHeaders: [SetHeader] = []) {
        self.endpoints = endpoints
        self.hostHeader = hostHeader
        self.setHeaders = setHeaders
    }
}

/// Who may use a request header that changes how Switchyard treats the request (the override
/// and preview headers): a client whose address is in `sources`, or a request whose
/// `secretHeader` carries `secret` exactly. Nobody else, whatever the header says.
public struct HeaderTrust: Sendable, Equatable {
    public var sources: AddressSet
    /// Lowercased header name; both it and `secret` or neither.
    public var secretHeader: Bytes?
    public var secret: Bytes?

    public static let nobody = HeaderTrust(sources: .nobody)
    /// Every client: for tests and for proxies reachable only by trusted clients.
    public static let everyone = HeaderTrust(sources: AddressSet(prefixes: [], matchesEveryone: true))

    public init(sources: AddressSet, secretHeader: Bytes? = nil, secret: Bytes? = nil) {
        self.sources = sources
        self.secretHeader = secretHeader
        self.secret = secret
    }
}

public struct BlueGreen: Sendable, Equatable {
    public var blue: Pool
    public var green: Pool
    public var live: Color
    /// Lowercased name of the preview header; a trusted request whose value names the idle
    /// color reaches the idle color.
    public var previewHeader: Bytes?
    public var previewTrust: HeaderTrust
    /// After a flip, the tunnels and streaming responses left on the color that went idle are
    /// closed gradually, the last this many milliseconds after the flip; 0: never.
    public var drainTunnelsMs: UInt64

    public init(blue: Pool, green: Pool, live: Color, previewHeader: Bytes?, previewTrust: HeaderTrust = .nobody,
                drainTunnelsMs: UInt64 = 0) {
        self.blue = blue
        self.green = green
        self.live = live
        self.previewHeader = previewHeader
        self.previewTrust = previewTrust
        self.drainTunnelsMs = drainTunnelsMs
    }

    public func pool(_ color: Color) -> Pool { color == .blue ? blue : green }
}

public enum UpstreamKind: Sendable, Equatable {
    case pool(Pool)
    case blueGreen(BlueGreen)
}

public struct Upstream: Sendable, Equatable {
    public var name: String
    public var kind: UpstreamKind
    /// Per-upstream hard cap on concurrent mirrored copies (for shadow upstreams).
    public var mirrorMaxInFlight: Int
    /// Per-upstream cap on the bytes of mirrored copies held, unsent or unanswered.
    public var mirrorMaxBufferBytes: Int
    /// Health checks, ejection, retries and limits (UpstreamPolicy.swift).
    public var policy = UpstreamPolicy()

    public static let defaultMirrorMaxInFlight = 100
    public static let defaultMirrorMaxBufferBytes = 16 << 20

    public init(name: String, kind: UpstreamKind, mirrorMaxInFlight: Int = Upstream.defaultMirrorMaxInFlight,
                mirrorMaxBufferBytes: Int = Upstream.defaultMirrorMaxBufferBytes) {
        self.name = name
        self.kind = kind
        self.mirrorMaxInFlight = mirrorMaxInFlight
        self.mirrorMaxBufferBytes = mirrorMaxBufferBytes
    }

    /// The pool that serves `color` (ignored for plain pools).
    public func pool(_ color: Color?) -> Pool {
        switch kind {
        case .pool(let p): return p
        case .blueGreen(let bg): return bg.pool(color ?? bg.live)
        }
    }
}

public enum HostMatch: Sendable, Equatable {
    /// Lowercased exact host (no port).
    case exact(Bytes)
    /// `*.example.com` stored as the lowercased suffix `.example.com`.
    case suffix(Bytes)
}

public enum HeaderMatch: Sendable, Equatable {
    case present
    case equals(Bytes)
}

public struct Match: Sendable, Equatable {
    public var hosts: [HostMatch]            // empty = any host
    public var pathPrefix: Bytes?            // nil = any path
    public var methods: [Bytes]              // empty = any method; uppercase
    public var headers: [(name: Bytes, match: HeaderMatch)]  // lowercased names; all must match

    public init(hosts: [HostMatch] = [], pathPrefix: Bytes? = nil, methods: [Bytes] = [],
                headers: [(name: Bytes, match: HeaderMatch)] = []) {
        self.hosts = hosts
        self.pathPrefix = pathPrefix
        self.methods = methods
        self.headers = headers
    }

    public static func == (a: Match, b: Match) -> Bool {
        a.hosts == b.hosts && a.pathPrefix == b.pathPrefix && a.methods == b.methods
            && a.headers.count == b.headers.count
            && zip(a.headers, b.headers).allSatisfy { $0.name == $1.name && $0.match == $1.match }
    }
}

public enum Rewrite: Sendable, Equatable {
    /// Remove this prefix from the path (an empty remainder becomes "/").
    case stripPrefix(Bytes)
    /// Put this prefix in front of the path.
    case prefix(Bytes)
}

public struct Variant: Sendable, Equatable {
    public var name: String
    public var nameBytes: Bytes
    public var upstream: Int     // index into Snapshot.upstreams
    public var weight: Int
    /// Served by the blue/green upstream's idle color instead of its live one.
    public var idle: Bool

    public init(name: String, upstream: Int, weight: Int, idle: Bool = false) {
        self.idle = idle
        self.name = name
        self.nameBytes = Array(name.utf8)
        self.upstream = upstream
        self.weight = weight
    }
}

public enum RuleSource: Sendable, Equatable {
    case cookie(name: Bytes, value: Bytes)
    case header(name: Bytes, value: Bytes)   // lowercased name
}

public struct Rule: Sendable, Equatable {
    public var source: RuleSource
    public var variant: Int      // index into Split.variants
    public init(source: RuleSource, variant: Int) {
        self.source = source
        self.variant = variant
    }
}

public enum StickyKey: Sendable, Equatable {
    case header(Bytes)   // lowercased header name
    case cookie(Bytes)
}

/// Signs cookie payloads: writes a MAC of `message` into `output` (32 bytes for HMAC-SHA256).
public typealias CookieSigner = @Sendable (_ message: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> Void

public struct Sticky: Sendable {
    public var cookieName: Bytes
    public var maxAgeSeconds: Int
    public var key: StickyKey?
    /// With a key: a valid assignment cookie wins over the key (and a key-derived bucket is
    /// written to the cookie), so a client cannot pick its bucket by choosing a key value once
    /// it holds a cookie. False: the key wins, as when nothing is signed.
    public var preferCookie: Bool
    public var salt: Bytes {
        didSet {
            saltTag = Sticky.saltTag(salt)
            signatures = SignatureTable(signer, saltTag: saltTag)
        }
    }
    /// Called 10,000 times when the sticky is built (or its salt or signer changes), once per
    /// bucket; never per request.
    public var signer: CookieSigner? {
        didSet { signatures = SignatureTable(signer, saltTag: saltTag) }
    }
    /// FNV-1a 32 of `salt`, written in the assignment cookie so a cookie issued for another
    /// salt (another route or experiment) is recognized as stale. Follows `salt`.
    public private(set) var saltTag: UInt32
    /// The signature of every bucket's cookie, when signed. Immutable: builds that keep the
    /// secret and the salt share one table (SignatureCache in Control).
    public private(set) var signatures: SignatureTable?

    /// `preferCookie` defaults to true when the cookie is signed: an unsigned cookie is as
    /// client-chosen as the key.
    public init(cookieName: Bytes, maxAgeSeconds: Int, key: StickyKey?, salt: Bytes, signer: CookieSigner?,
                preferCookie: Bool? = nil) {
        self.cookieName = cookieName
        self.maxAgeSeconds = maxAgeSeconds
        self.key = key
        self.preferCookie = preferCookie ?? (signer != nil)
        self.salt = salt
        self.signer = signer
        self.saltTag = Sticky.saltTag(salt)
        self.signatures = SignatureTable(signer, saltTag: saltTag)
    }

    /// With the table `signer` and `salt` make, already computed (`signatures.saltTag` must be
    /// this salt's): nothing is signed here.
    public init(cookieName: Bytes, maxAgeSeconds: Int, key: StickyKey?, salt: Bytes, signer: @escaping CookieSigner,
                signatures: SignatureTable, preferCookie: Bool? = nil) {
        precondition(signatures.saltTag == Sticky.saltTag(salt), "a signature table made for another salt")
        self.cookieName = cookieName
        self.maxAgeSeconds = maxAgeSeconds
        self.key = key
        self.preferCookie = preferCookie ?? true
        self.salt = salt
        self.signer = signer
        self.saltTag = Sticky.saltTag(salt)
        self.signatures = signatures
    }
}

public struct Split: Sendable {
    /// Changing the variants (e.g. their weights) recomputes `thresholds`.
    public var variants: [Variant] {
        didSet { thresholds = Split.computeThresholds(variants.map(\.weight)) }
    }
    /// thresholds[i] is the exclusive end of variant i's bucket range; ranges are consecutive
    /// from 0 in config order and the last ends at `Split.buckets` (when the total weight > 0).
    public private(set) var thresholds: [Int32]
    public var rules: [Rule]
    /// Lowercased override header name; nil disables the override. Honoured only for requests
    /// `overrideTrust` trusts: that is the only way to a weight-0 variant besides a rule.
    public var overrideHeader: Bytes?
    public var overrideTrust: HeaderTrust
    public var sticky: Sticky?
    /// An A/B experiment on this split (a sticky split only): units, exposures, goals.
    public var experiment: Experiment?

    public static let buckets: Int32 = 10_000
    /// Most rules a route may have (the snapshot builder refuses more): header rules are
    /// checked one by one on every request that reaches the route.
    public static let maxRules = 1_000

    public init(variants: [Variant], rules: [Rule], overrideHeader: Bytes?, overrideTrust: HeaderTrust = .nobody,
                sticky: Sticky?, experiment: Experiment? = nil) {
        self.experiment = experiment
        self.variants = variants
        self.rules = rules
        self.overrideHeader = overrideHeader
        self.overrideTrust = overrideTrust
        self.sticky = sticky
        self.thresholds = Split.computeThresholds(variants.map(\.weight))
    }
}

public struct Mirror: Sendable, Equatable {
    public var upstream: Int
    /// Percent of matching requests copied, as parts per million (100% = 1_000_000).
    public var ppm: Int
    public var maxBodyBytes: Int
    public var methods: [Bytes]     // empty = every method
    public var hostSuffix: Bytes?
    /// Lowercased names of the client's header fields left out of the copy (credentials a
    /// shadow need not see); empty = copy every end-to-end field.
    public var stripHeaders: [Bytes]
    /// What of the shadow's answer is compared with the primary's (all off: nothing, no cost).
    public var compare: ShadowCompareSpec
    /// Copies go to the blue/green upstream's idle color instead of its live one.
    public var idle: Bool

    public init(upstream: Int, percent: Double, maxBodyBytes: Int, methods: [Bytes], hostSuffix: Bytes?,
                stripHeaders: [Bytes] = [], compare: ShadowCompareSpec = ShadowCompareSpec(), idle: Bool = false) {
        self.idle = idle
        self.upstream = upstream
        // Clamped and converted exactly: a NaN or out-of-range percent mirrors nothing, never traps.
        self.ppm = Int(exactly: (min(max(percent, 0), 100) * 10_000).rounded()) ?? 0
        self.maxBodyBytes = maxBodyBytes
        self.methods = methods
        self.hostSuffix = hostSuffix
        self.stripHeaders = stripHeaders
        self.compare = compare
    }
}

/// A mirror's comparison, frozen: status (0 off, 1 exact, 2 class), latency, body hash.
public struct ShadowCompareSpec: Sendable, Equatable {
    public var status: UInt8
    public var latency: Bool
    public var bodyHash: Bool

    public init(status: UInt8 = 0, latency: Bool = false, bodyHash: Bool = false) {
        self.status = status
        self.latency = latency
        self.bodyHash = bodyHash
    }

    public var enabled: Bool { status != 0 || latency || bodyHash }
}

public enum RouteTarget: Sendable {
    case upstream(Int)
    case split(Split)
}

public struct Route: Sendable {
    public var name: String
    public var match: Match
    public var rewrite: Rewrite?
    public var target: RouteTarget
    public var mirrors: [Mirror]
    /// Response header that names the variant served; nil disables it.
    public var variantHeader: Bytes?
    /// Protocols (lowercased names, no version) a request on this route may switch to
    /// (`allowsUpgrade`); empty: none, every upgrade offer is forwarded as a plain request.
    public var upgrades: [Bytes]

    public static let defaultUpgrades: [Bytes] = [Array("websocket".utf8)]

    public init(name: String, match: Match, rewrite: Rewrite?, target: RouteTarget,
                mirrors: [Mirror], variantHeader: Bytes?, upgrades: [Bytes] = Route.defaultUpgrades) {
        self.name = name
        self.match = match
        self.rewrite = rewrite
        self.target = target
        self.mirrors = mirrors
        self.variantHeader = variantHeader
        self.upgrades = upgrades
    }
}

public final class Snapshot: Sendable {
    public let version: UInt64
    public let routes: [Route]
    public let upstreams: [Upstream]
    /// Clients whose X-Forwarded-For and Forwarded headers are kept (the proxy's own element is
    /// appended); everyone else's are replaced.
    public let trustForwardedFrom: AddressSet
    /// The same routes and upstreams frozen into flat buffers for `decide`.
    let table: RoutingTable

    public init(version: UInt64, routes: [Route], upstreams: [Upstream], trustForwardedFrom: AddressSet = .nobody) {
        self.version = version
        self.routes = routes
        self.upstreams = upstreams
        self.trustForwardedFrom = trustForwardedFrom
        self.table = RoutingTable(routes: routes, upstreams: upstreams)
    }

    public func upstreamIndex(named name: String) -> Int? {
        upstreams.firstIndex { $0.name == name }
    }
}
