// The validated configuration: plain values with every default filled in. Runtime changes (set
// weights, flip, endpoint add/remove/drain, set mirror) edit a copy of it and rebuild the
// snapshot with SnapshotBuilder, so everything here is a `var` with lookups by name.
import Routing
import TLS

public struct Config: Sendable, Equatable {
    /// Event loops; 0 = one per core.
    public var workers: Int = 0
    public var listeners: [Listener] = []
    public var limits = Limits()
    public var timeouts = Timeouts()
    /// Sorted by name (the subscript keeps them sorted), so snapshot indexes do not depend on
    /// the order keys were written in.
    public var upstreams: [Upstream] = []
    /// In file order: the first matching route wins.
    public var routes: [Route] = []
    /// nil: no control socket.
    public var control: ControlSocket? = nil
    /// nil: no admin listener.
    public var admin: Admin? = nil
    /// CIDRs of clients whose X-Forwarded-For and Forwarded are kept (the proxy appends its own
    /// element); empty: every client's are replaced.
    public var trustForwardedFrom: [String] = []
    /// Started as root: the user (and group) to run as once listeners, the control socket and
    /// files are open. nil: no change of user (a warning when that leaves the proxy root).
    public var user: String? = nil
    public var group: String? = nil
    /// Reload when the config file changes (a ConfigMap update swapping its `..data` symlink).
    public var watchConfig = false
    /// nil: no access log (see ConfigObservability.swift).
    public var accessLog: AccessLog? = nil
    public var tracing = Tracing()
    /// Runtime state shared with other instances through etcd (ConfigFleet.swift); nil: this
    /// instance alone, with its state file.
    public var fleet: Fleet? = nil
    /// Where release events are posted (ConfigHooks.swift).
    public var hooks: [Hook] = []

    public init() {}

    public func upstreamIndex(named name: String) -> Int? { upstreams.firstIndex { $0.name == name } }
    public func routeIndex(named name: String) -> Int? { routes.firstIndex { $0.name == name } }

    /// The upstream called `name`. Setting replaces it (or inserts it in name order); setting
    /// nil removes it.
    public subscript(upstream name: String) -> Upstream? {
        get { upstreamIndex(named: name).map { upstreams[$0] } }
        set {
            if let index = upstreamIndex(named: name) { upstreams.remove(at: index) }
            guard var upstream = newValue else { return }
            upstream.name = name
            let at = upstreams.firstIndex { $0.name > name } ?? upstreams.count
            upstreams.insert(upstream, at: at)
        }
    }

    /// The route called `name`. Setting replaces it in place (or appends it); nil removes it.
    public subscript(route name: String) -> Route? {
        get { routeIndex(named: name).map { routes[$0] } }
        set {
            let index = routeIndex(named: name)
            guard var route = newValue else {
                if let index { routes.remove(at: index) }
                return
            }
            route.name = name
            if let index { routes[index] = route } else { routes.append(route) }
        }
    }

    /// Names of the upstreams some route sends to or mirrors to.
    public var referencedUpstreams: Set<String> {
        var names = Set<String>()
        for route in routes {
            names.formUnion(route.primaryUpstreams)
            names.formUnion(route.mirrors.map(\.upstream))
        }
        return names
    }
}

// MARK: - Upstreams

extension Config {
    public struct Endpoint: Sendable, Equatable {
        public var address: Address
        public var weight: Int
        /// Takes no new requests; set at run time by `endpoint drain`.
        public var draining: Bool

        public init(address: Address, weight: Int = 1, draining: Bool = false) {
            self.address = address
            self.weight = weight
            self.draining = draining
        }
    }

    /// Endpoints in order, indexed by address: runtime edits of pools with thousands of
    /// endpoints cost one lookup each, not a scan (a 1,000-endpoint transaction took 290 s when
    /// every edit scanned the pool).
    public struct Pool: Sendable, Equatable {
        private var list: [Endpoint]
        /// Position by resolved and by written address; the first one when listed twice.
        private var positions: [String: Int] = [:]
        /// Endpoints that are not draining.
        public private(set) var servingCount = 0

        public init(endpoints: [Endpoint]) {
            list = endpoints
            reindex()
        }

        /// Replacing the list (or editing it through this property) re-indexes the whole pool;
        /// `append`, `remove(at:)` and `setDraining` keep the index as they go.
        public var endpoints: [Endpoint] {
            get { list }
            set {
                list = newValue
                reindex()
            }
        }

        /// The endpoint at `address`, matched as resolved (`Address.description`) or as written.
        public func endpointIndex(address: String) -> Int? { positions[address] }

        public mutating func append(_ endpoint: Endpoint) {
            for key in Self.keys(endpoint.address) where positions[key] == nil { positions[key] = list.count }
            list.append(endpoint)
            if !endpoint.draining { servingCount += 1 }
        }

        public mutating func remove(at index: Int) {
            let removed = list.remove(at: index)
            if !removed.draining { servingCount -= 1 }
            for key in Self.keys(removed.address) where positions[key] == index { positions[key] = nil }
            // Later endpoints move up one; a duplicate of the removed address becomes the first.
            for j in index..<list.count {
                let address = list[j].address
                moveUp(address.description, to: j)
                if address.written != address.description { moveUp(address.written, to: j) }
            }
        }

        private mutating func moveUp(_ key: String, to position: Int) {
            if let p = positions[key] {
                if p == position + 1 { positions[key] = position }
            } else {
                positions[key] = position
            }
        }

        public mutating func setDraining(_ draining: Bool, at index: Int) {
            guard list[index].draining != draining else { return }
            list[index].draining = draining
            servingCount += draining ? -1 : 1
        }

        private mutating func reindex() {
            positions.removeAll(keepingCapacity: true)
            servingCount = 0
            for (index, endpoint) in list.enumerated() {
                for key in Self.keys(endpoint.address) where positions[key] == nil { positions[key] = index }
                if !endpoint.draining { servingCount += 1 }
            }
        }

        private static func keys(_ address: Address) -> [String] {
            address.written == address.description ? [address.description] : [address.description, address.written]
        }

        public static func == (a: Pool, b: Pool) -> Bool { a.list == b.list }
    }

    public struct Warmup: Sendable, Equatable {
        public var path = "/"
        public var requests = 10
        public var timeoutMs = 5_000
        public init() {}
    }

    public struct BlueGreen: Sendable, Equatable {
        public var blue: Pool
        public var green: Pool
        public var live: Color
        /// A trusted request whose header names the idle color reaches the idle color; nil
        /// disables.
        public var previewHeader: String?
        /// Who may use `previewHeader`.
        public var previewTrust: Trust
        /// Requests sent to the idle color before a flip; nil: flip at once.
        public var warmup: Warmup?
        /// After a flip, tunnels and streaming responses still on the color that went idle are
        /// closed gradually so that none is left this long after the flip; 0: never closed.
        public var drainTunnelsMs = 0
        /// What each color sets for itself (ConfigUpstreamHost.swift); unset members fall back
        /// to the upstream's.
        public var blueSettings = ColorSettings()
        public var greenSettings = ColorSettings()

        public init(blue: Pool, green: Pool, live: Color, previewHeader: String? = nil, previewTrust: Trust = Trust(),
                    warmup: Warmup? = nil) {
            self.blue = blue
            self.green = green
            self.live = live
            self.previewHeader = previewHeader
            self.previewTrust = previewTrust
            self.warmup = warmup
        }

        public subscript(color: Color) -> Pool {
            get { color == .blue ? blue : green }
            set { if color == .blue { blue = newValue } else { green = newValue } }
        }
    }

    public enum UpstreamKind: Sendable, Equatable {
        case pool(Pool)
        case blueGreen(BlueGreen)
    }

    public struct Upstream: Sendable, Equatable {
        public var name: String
        public var kind: UpstreamKind
        /// Cap on concurrent mirrored copies sent to this upstream.
        public var maxInFlight: Int
        /// Cap on the bytes of mirrored copies held for this upstream, unsent or unanswered.
        public var maxBufferBytes: Int
        /// Health checks, ejection, retries and limits (ConfigResilience.swift).
        public var policy: UpstreamPolicy
        /// The Host sent to this upstream instead of the client's (which goes in
        /// X-Forwarded-Host); nil passes the client's. A color's own setting wins.
        public var hostHeader: String? = nil
        /// How often endpoints named by host name are resolved again.
        public var resolveEveryMs = Upstream.defaultResolveEveryMs
        /// TLS to this upstream's endpoints (ConfigTLS.swift); nil: plain HTTP.
        public var tls: UpstreamTLS? = nil
        /// Header fields sent on every request to this upstream, values read from secrets
        /// (ConfigSetHeaders.swift); a color's own list wins.
        public var setHeaders: [SetHeader] = []
        public var auth: UpstreamAuth? = nil   // request signing (ConfigAuth.swift); nil: none

        public static let defaultResolveEveryMs = 30_000

        public init(name: String, kind: UpstreamKind, maxInFlight: Int = Routing.Upstream.defaultMirrorMaxInFlight,
                    maxBufferBytes: Int = Routing.Upstream.defaultMirrorMaxBufferBytes, policy: UpstreamPolicy = UpstreamPolicy()) {
            self.name = name
            self.kind = kind
            self.maxInFlight = maxInFlight
            self.maxBufferBytes = maxBufferBytes
            self.policy = policy
        }

        public var blueGreen: BlueGreen? {
            if case .blueGreen(let bg) = kind { return bg } else { return nil }
        }

        /// A plain upstream's pool (`color` nil), or one color of a blue/green upstream; nil
        /// when `color` does not fit the kind.
        public func pool(_ color: Color?) -> Pool? {
            switch (kind, color) {
            case (.pool(let pool), nil): return pool
            case (.blueGreen(let bg), let color?): return bg[color]
            default: return nil
            }
        }

        /// Edits the pool `pool(color)` names; false when `color` does not fit the kind.
        @discardableResult
        public mutating func updatePool(_ color: Color?, _ edit: (inout Pool) -> Void) -> Bool {
            // `kind` lets go of the pool while it is edited, so the edit happens in place instead
            // of copying thousands of endpoints.
            switch kind {
            case .pool(var pool):
                guard color == nil else { return false }
                kind = .pool(Pool(endpoints: []))
                edit(&pool)
                kind = .pool(pool)
            case .blueGreen(var bg):
                guard let color else { return false }
                kind = .pool(Pool(endpoints: []))
                if color == .blue { edit(&bg.blue) } else { edit(&bg.green) }
                kind = .blueGreen(bg)
            }
            return true
        }
    }
}

// MARK: - Routes

extension Config {
    public struct HeaderMatch: Sendable, Equatable {
        public var name: String
        /// nil: the header only has to be present (`"*"` in the file).
        public var value: String?
        public init(name: String, value: String?) {
            self.name = name
            self.value = value
        }
    }

    public struct Match: Sendable, Equatable {
        /// Lowercased; `*.example.com` matches any subdomain. Empty = any host.
        public var hosts: [String] = []
        public var pathPrefix: String? = nil
        /// Uppercased. Empty = any method.
        public var methods: [String] = []
        /// All must match.
        public var headers: [HeaderMatch] = []
        public init() {}
    }

    public enum Rewrite: Sendable, Equatable {
        case stripPrefix(String)
        case prefix(String)
    }

    public struct Variant: Sendable, Equatable {
        public var name: String
        public var upstream: String
        public var weight: Int
        /// `"color": "idle"`: served by the blue/green upstream's color that is not live (the next
        /// version, canaried before a flip); false: by its live color.
        public var idle: Bool
        public init(name: String, upstream: String, weight: Int, idle: Bool = false) {
            self.idle = idle
            self.name = name
            self.upstream = upstream
            self.weight = weight
        }
    }

    public enum RuleSource: Sendable, Equatable {
        case cookie(name: String, value: String)
        case header(name: String, value: String)
    }

    public struct Rule: Sendable, Equatable {
        public var source: RuleSource
        public var variant: String
        public init(source: RuleSource, variant: String) {
            self.source = source
            self.variant = variant
        }
    }

    public enum StickyKey: Sendable, Equatable {
        case header(String)
        case cookie(String)
    }

    /// Who may use a steering header (override, preview): clients from `trustedSources`, or
    /// requests whose `secretHeader` carries the secret.
    public struct Trust: Sendable, Equatable {
        public static let defaultSecretHeader = "X-Switchyard-Token"

        /// CIDRs, IPv4 or IPv6.
        public var trustedSources: [String]
        public var secretHeader: String
        public var secret: Secret?

        public init(trustedSources: [String] = [], secretHeader: String = Trust.defaultSecretHeader, secret: Secret? = nil) {
            self.trustedSources = trustedSources
            self.secretHeader = secretHeader
            self.secret = secret
        }
    }

    public enum StickyPreference: String, Sendable, Equatable {
        case cookie, key
    }

    public struct Sticky: Sendable, Equatable {
        /// The assignment cookie; default `sy-<route name>`.
        public var cookie: String
        /// Default 604800 (7 days).
        public var maxAgeSeconds: Int
        /// Derive the bucket from this header or cookie instead of a random one.
        public var key: StickyKey?
        /// Seeds the bucket hash; default the route name.
        public var salt: String
        /// Signs the assignment cookie; nil: unsigned.
        public var secret: Secret?
        /// Which wins when a request has both a valid assignment cookie and the key; nil: the
        /// cookie when it is signed, else the key.
        public var prefer: StickyPreference?

        public init(cookie: String, maxAgeSeconds: Int = 604_800, key: StickyKey? = nil, salt: String, secret: Secret? = nil,
                    prefer: StickyPreference? = nil) {
            self.cookie = cookie
            self.maxAgeSeconds = maxAgeSeconds
            self.key = key
            self.salt = salt
            self.secret = secret
            self.prefer = prefer
        }
    }

    public struct Split: Sendable, Equatable {
        public static let defaultOverrideHeader = "X-Switchyard-Variant"

        /// Bucket ranges follow this order.
        public var variants: [Variant]
        public var rules: [Rule]
        /// Names a variant to serve (QA) on a request `overrideTrust` accepts; nil disables (the
        /// default: the override is opt-in).
        public var overrideHeader: String?
        public var overrideTrust: Trust
        public var sticky: Sticky?
        /// An A/B experiment on the split (ConfigExperiment.swift).
        public var experiment: Experiment?

        public init(variants: [Variant], rules: [Rule] = [], overrideHeader: String? = nil, overrideTrust: Trust = Trust(),
                    sticky: Sticky? = nil, experiment: Experiment? = nil) {
            self.experiment = experiment
            self.variants = variants
            self.rules = rules
            self.overrideHeader = overrideHeader
            self.overrideTrust = overrideTrust
            self.sticky = sticky
        }

        public func variantIndex(named name: String) -> Int? { variants.firstIndex { $0.name == name } }
    }

    public enum Target: Sendable, Equatable {
        case upstream(String)
        case split(Split)
    }

    public struct Mirror: Sendable, Equatable {
        public static let defaultMethods = ["GET", "HEAD", "OPTIONS"]

        public var upstream: String
        /// 0 < percent <= 100, fractions allowed.
        public var percent: Double
        /// Larger bodies are not mirrored. Default 1 MiB.
        public var maxBodyBytes: Int
        /// Uppercased; empty = every method (`["*"]` in the file).
        public var methods: [String]
        /// Appended to the Host header of the copy.
        public var hostSuffix: String?
        /// Header fields of the client's request left out of the copy (e.g. Authorization,
        /// Cookie), as written; compared case-insensitively. Empty: the copy keeps them all.
        public var stripHeaders: [String]
        /// What of the shadow's answer is compared with the primary's (`compare`); nil: nothing.
        public var compare: Compare?
        /// `"color": "idle"`: copies go to the blue/green upstream's color that is not live (the
        /// next version, before a flip); false: to its live color, like requests.
        public var idle: Bool

        public init(upstream: String, percent: Double, maxBodyBytes: Int = 1_048_576,
                    methods: [String] = Mirror.defaultMethods, hostSuffix: String? = nil, stripHeaders: [String] = [],
                    compare: Compare? = nil, idle: Bool = false) {
            self.idle = idle
            self.upstream = upstream
            self.percent = percent
            self.maxBodyBytes = maxBodyBytes
            self.methods = methods
            self.hostSuffix = hostSuffix
            self.stripHeaders = stripHeaders
            self.compare = compare
        }

        /// Fields the proxy writes itself on every copy (framing, Host, forwarding, the shadow
        /// mark): stripping them would break the copy or hide what it is, so a config that
        /// names one is refused.
        public static let unstrippableHeaders: Set<String> = [
            "host", "content-length", "transfer-encoding", "connection", "x-forwarded-for", "x-forwarded-proto",
            "x-forwarded-host", "forwarded", "x-request-id", "x-switchyard-shadow",
        ]
    }

    public struct Route: Sendable, Equatable {
        public static let defaultVariantHeader = "X-Switchyard-Variant"

        public var name: String
        public var match: Match
        public var rewrite: Rewrite?
        public var target: Target
        public var mirrors: [Mirror]
        /// Response header naming the variant served; nil disables.
        public var variantHeader: String?
        /// A progressive rollout of one of the split's variants (Rollout.swift), started on load.
        public var rollout: RolloutPlan?
        /// Protocols (lowercased, no version) a request may switch to through this route; empty:
        /// none. Never "h2c" (ConfigRoutes refuses it).
        public var upgrades: [String]

        public static let defaultUpgrades = ["websocket"]

        public init(name: String, match: Match = Match(), rewrite: Rewrite? = nil, target: Target,
                    mirrors: [Mirror] = [], variantHeader: String? = Route.defaultVariantHeader, rollout: RolloutPlan? = nil,
                    upgrades: [String] = Route.defaultUpgrades) {
            self.name = name
            self.match = match
            self.rewrite = rewrite
            self.target = target
            self.mirrors = mirrors
            self.variantHeader = variantHeader
            self.rollout = rollout
            self.upgrades = upgrades
        }

        /// The split, if the route has one. Setting it makes the route a split route.
        public var split: Split? {
            get { if case .split(let split) = target { return split } else { return nil } }
            set { if let newValue { target = .split(newValue) } }
        }

        /// The upstreams that serve this route's requests (not its mirrors).
        public var primaryUpstreams: [String] {
            switch target {
            case .upstream(let name): return [name]
            case .split(let split): return split.variants.map(\.upstream)
            }
        }

        public func mirrorIndex(upstream: String) -> Int? { mirrors.firstIndex { $0.upstream == upstream } }
    }
}
