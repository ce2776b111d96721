// The one place a Config becomes Routing's immutable Snapshot: names become indexes, header
// names lowercased bytes, hosts exact or suffix matches, secrets cookie signers. It re-checks
// what a runtime edit of the Config could break, so a bad edit is refused, never served.
import Config
import Crypto
import Proxy
import Routing
import TLS

public enum SnapshotBuilder {
    /// `names`: the addresses of endpoints named by host name (each stands for all of its
    /// addresses); a name it lacks is an error when `names.required`, else left out.
    /// `signatures`: where signed cookies' tables come from, so a build that keeps a route's
    /// secret and salt signs nothing.
    public static func build(_ config: Config, version: UInt64, registry: EndpointRegistry,
                             names: ResolvedNames = ResolvedNames(),
                             signatures: SignatureCache = .shared) throws(ConfigError) -> Snapshot {
        let builder = Builder(config: config, registry: registry, names: names, signatures: signatures,
                              diagnostics: Diagnostics(file: nil))
        let upstreams = builder.upstreams()
        let routes = builder.routes()
        let forwarding = builder.addresses(config.trustForwardedFrom, ConfigPath.root.key("trustForwardedFrom"))
        guard builder.diagnostics.errors.isEmpty else { throw ConfigError(messages: builder.diagnostics.errors) }
        return Snapshot(version: version, routes: routes, upstreams: upstreams, trustForwardedFrom: forwarding)
    }
}

private struct Builder {
    let config: Config
    let registry: EndpointRegistry
    let names: ResolvedNames
    let signatures: SignatureCache
    let diagnostics: Diagnostics
    let upstreamIndexes: [String: Int]

    init(config: Config, registry: EndpointRegistry, names: ResolvedNames, signatures: SignatureCache,
         diagnostics: Diagnostics) {
        self.config = config
        self.registry = registry
        self.names = names
        self.signatures = signatures
        self.diagnostics = diagnostics
        var indexes: [String: Int] = [:]
        for (index, upstream) in config.upstreams.enumerated() {
            if indexes[upstream.name] != nil {
                diagnostics.error(Self.upstreamsPath.key(upstream.name), line: nil, "duplicate upstream name")
            } else {
                indexes[upstream.name] = index
            }
        }
        upstreamIndexes = indexes
    }

    static let upstreamsPath = ConfigPath.root.key("upstreams")

    private func error(_ path: ConfigPath, _ reason: String) { diagnostics.error(path, line: nil, reason) }

    // MARK: Upstreams

    func upstreams() -> [Routing.Upstream] {
        config.upstreams.map { upstream in
            let path = Self.upstreamsPath.key(upstream.name)
            if upstream.maxInFlight < 1 { error(path.key("maxInFlight"), "must be at least 1, got \(upstream.maxInFlight)") }
            if upstream.maxBufferBytes < 1 { error(path.key("maxBufferBytes"), "must be at least 1, got \(upstream.maxBufferBytes)") }
            let kind: Routing.UpstreamKind
            switch upstream.kind {
            case .pool(let pool):
                kind = .pool(self.pool(pool, path, live: true, upstream: upstream, color: nil))
            case .blueGreen(let bg):
                kind = .blueGreen(Routing.BlueGreen(
                    blue: self.pool(bg.blue, path.key("blue"), live: bg.live == .blue, upstream: upstream, color: .blue),
                    green: self.pool(bg.green, path.key("green"), live: bg.live == .green, upstream: upstream, color: .green),
                    live: bg.live,
                    previewHeader: bg.previewHeader.map(lowercasedBytes),
                    previewTrust: trust(bg.previewTrust, path.key("preview")),
                    drainTunnelsMs: UInt64(max(0, bg.drainTunnelsMs))))
            }
            var built = Routing.Upstream(name: upstream.name, kind: kind, mirrorMaxInFlight: upstream.maxInFlight,
                                         mirrorMaxBufferBytes: upstream.maxBufferBytes)
            built.policy = upstream.policy
            return built
        }
    }

    /// CIDR text to the compact matcher; a bad entry is an error at its path.
    func addresses(_ cidrs: [String], _ path: ConfigPath) -> AddressSet {
        switch AddressSet.parse(cidrs) {
        case .success(let set): return set
        case .failure(let error):
            self.error(path, "\"\(error.entry)\" is not a CIDR (e.g. \"10.0.0.0/8\", \"::1/128\")")
            return .nobody
        }
    }

    private func trust(_ trust: Config.Trust, _ path: ConfigPath) -> HeaderTrust {
        HeaderTrust(sources: addresses(trust.trustedSources, path.key("trustedSources")),
                    secretHeader: trust.secret.map { _ in lowercasedBytes(trust.secretHeader) },
                    secret: trust.secret?.bytes)
    }

    /// A live pool (what a plain upstream or the live color serves from) needs an endpoint that
    /// is not draining: runtime edits could otherwise turn every request into a 503. An
    /// endpoint named by host name becomes one endpoint per address it resolved to, each with
    /// its weight, named `name:port@address` in the registry; an endpoint reached over TLS has
    /// its whole TLS policy in its identity too (EndpointIdentity).
    private func pool(_ pool: Config.Pool, _ path: ConfigPath, live: Bool, upstream: Config.Upstream, color: Color?) -> Routing.Pool {
        let hostHeader = upstream.hostHeader(color)
        let tls = upstream.tls(color)
        func identity(_ key: String, _ e: Config.Endpoint) -> String {
            EndpointIdentity.key(key, tls: tls, sni: tls == nil ? nil : upstream.sniName(color, endpointHost: e.address))
        }
        let path = path.key("endpoints")
        if pool.endpoints.isEmpty {
            error(path, "must list at least one endpoint")
        } else if live && pool.servingCount == 0 {
            error(path, "every endpoint is draining; a live pool needs at least one that serves")
        }
        var seen = Set<String>()
        var endpoints: [Routing.Endpoint] = []
        endpoints.reserveCapacity(pool.endpoints.count)
        for (index, endpoint) in pool.endpoints.enumerated() {
            let address = endpoint.address.description
            if !seen.insert(address).inserted { error(path.index(index), "duplicate endpoint \(address)") }
            if endpoint.weight < 1 { error(path.index(index).key("weight"), "must be at least 1, got \(endpoint.weight)") }
            guard let name = endpoint.address.hostName else {
                endpoints.append(Routing.Endpoint(host: endpoint.address.numericHost ?? endpoint.address.host,
                                                  port: endpoint.address.port, weight: endpoint.weight,
                                                  id: registry.id(for: identity(address, endpoint), label: address), draining: endpoint.draining))
                continue
            }
            let written = endpoint.address.written
            guard let resolved = names.addresses[written], !resolved.isEmpty else {
                if names.required {
                    error(path.index(index), "cannot resolve \"\(name)\"" + (names.failures[written].map { " (\($0))" } ?? "")
                        + "; no address was ever found for it")
                }
                continue
            }
            for a in resolved {
                endpoints.append(Routing.Endpoint(host: a.host, port: a.port, weight: endpoint.weight,
                                                  id: registry.id(for: identity(ResolvedNames.key(written, a), endpoint), label: ResolvedNames.key(written, a)),
                                                  draining: endpoint.draining, hostName: name))
            }
        }
        let setHeaders = upstream.setHeaders(color).map { Routing.SetHeader(name: bytes($0.name), value: $0.value.bytes) }
        return Routing.Pool(endpoints: endpoints, hostHeader: hostHeader, setHeaders: setHeaders)
    }

    // MARK: Routes

    func routes() -> [Routing.Route] {
        // The router tracks at most this many goals over every experiment: past it, goals
        // would silently never count.
        var goals = 0
        for (index, route) in config.routes.enumerated() {
            let count = route.split?.experiment?.goals.count ?? 0
            goals += count
            if count > 0 && goals > Routing.Experiment.maxGoals {
                error(ConfigPath.root.key("routes").index(index).key("experiment").key("goals"),
                      "the experiments have \(goals) goals so far, more than the \(Routing.Experiment.maxGoals) the router counts")
                break
            }
        }
        return config.routes.enumerated().map { index, route in
            let path = ConfigPath.root.key("routes").index(index)
            let target: Routing.RouteTarget
            switch route.target {
            case .upstream(let name):
                target = .upstream(upstreamIndex(name, path.key("upstream")))
                if route.rollout?.flip != nil, config[upstream: name]?.blueGreen == nil {
                    error(path.key("rollout").key("flip"), "upstream \"\(name)\" has no colors: a flip release needs a blue/green upstream")
                }
            case .split(let split):
                target = .split(self.split(split, path))
            }
            if route.mirrors.count > ConfigParser.maxMirrors {
                error(path.key("mirror"), "at most \(ConfigParser.maxMirrors) mirrors, got \(route.mirrors.count)")
            }
            let mirrors = route.mirrors.enumerated().map { mirrorIndex, mirror in
                self.mirror(mirror, path.key("mirror").index(mirrorIndex))
            }
            return Routing.Route(name: route.name, match: match(route.match), rewrite: route.rewrite.map(rewrite),
                                 target: target, mirrors: mirrors, variantHeader: route.variantHeader.map(bytes),
                                 upgrades: route.upgrades.map(bytes))
        }
    }

    private func upstreamIndex(_ name: String, _ path: ConfigPath) -> Int {
        guard let index = upstreamIndexes[name] else {
            error(path, "unknown upstream \"\(name)\"")
            return 0
        }
        return index
    }

    private func match(_ match: Config.Match) -> Routing.Match {
        Routing.Match(
            hosts: match.hosts.map { host in
                host.hasPrefix("*.") ? .suffix(lowercasedBytes(String(host.dropFirst()))) : .exact(lowercasedBytes(host))
            },
            pathPrefix: match.pathPrefix.map(bytes),
            methods: match.methods.map { Array($0.uppercased().utf8) },
            headers: match.headers.map { header in
                (name: lowercasedBytes(header.name), match: header.value.map { .equals(bytes($0)) } ?? .present)
            })
    }

    private func rewrite(_ rewrite: Config.Rewrite) -> Routing.Rewrite {
        switch rewrite {
        case .stripPrefix(let prefix): return .stripPrefix(bytes(prefix))
        case .prefix(let prefix): return .prefix(bytes(prefix))
        }
    }

    private func split(_ split: Config.Split, _ path: ConfigPath) -> Routing.Split {
        let splitPath = path.key("split")
        if split.variants.isEmpty { error(splitPath, "must list at least one variant") }
        if split.variants.count > ConfigParser.maxVariants {
            error(splitPath, "at most \(ConfigParser.maxVariants) variants, got \(split.variants.count)")
        }
        var seen = Set<String>()
        let variants = split.variants.enumerated().map { index, variant in
            if !seen.insert(variant.name).inserted { error(splitPath.index(index).key("variant"), "duplicate variant \"\(variant.name)\"") }
            if !(0...ConfigParser.maxWeight).contains(variant.weight) {
                error(splitPath.index(index).key("weight"), "must be between 0 and \(ConfigParser.maxWeight), got \(variant.weight)")
            }
            if variant.idle, config[upstream: variant.upstream].map({ $0.blueGreen == nil }) == true {
                error(splitPath.index(index).key("color"), "upstream \"\(variant.upstream)\" has no colors: \"idle\" needs a blue/green upstream")
            }
            return Routing.Variant(name: variant.name, upstream: upstreamIndex(variant.upstream, splitPath.index(index).key("upstream")),
                                   weight: variant.weight, idle: variant.idle)
        }
        if !split.variants.isEmpty && split.variants.reduce(0, { $0 + max($1.weight, 0) }) == 0 {
            error(splitPath, "the total weight must be greater than 0")
        }
        if split.rules.count > Routing.Split.maxRules {
            error(path.key("rules"), "at most \(Routing.Split.maxRules) rules, got \(split.rules.count)")
        }
        let rules = split.rules.enumerated().map { index, rule in
            let variant = split.variantIndex(named: rule.variant)
            if variant == nil { error(path.key("rules").index(index).key("variant"), "unknown variant \"\(rule.variant)\"") }
            let source: Routing.RuleSource
            switch rule.source {
            case .cookie(let name, let value): source = .cookie(name: bytes(name), value: bytes(value))
            case .header(let name, let value): source = .header(name: lowercasedBytes(name), value: bytes(value))
            }
            return Routing.Rule(source: source, variant: variant ?? 0)
        }
        return Routing.Split(variants: variants, rules: rules, overrideHeader: split.overrideHeader.map(lowercasedBytes),
                             overrideTrust: trust(split.overrideTrust, path.key("override")),
                             sticky: split.sticky.map { sticky($0, path.key("sticky")) },
                             experiment: split.experiment.flatMap { experiment in
                                 split.sticky.map { SnapshotExperiments.experiment(experiment, sticky: $0, variants: split.variants) }
                             })
    }

    private func sticky(_ sticky: Config.Sticky, _ path: ConfigPath) -> Routing.Sticky {
        if sticky.maxAgeSeconds < 1 { error(path.key("maxAgeSeconds"), "must be at least 1, got \(sticky.maxAgeSeconds)") }
        let key: Routing.StickyKey?
        switch sticky.key {
        case .header(let name): key = .header(lowercasedBytes(name))
        case .cookie(let name): key = .cookie(bytes(name))
        case nil: key = nil
        }
        let salt = bytes(sticky.salt)
        let prefer = sticky.prefer.map { $0 == .cookie }
        guard let secret = sticky.secret?.bytes else {
            return Routing.Sticky(cookieName: bytes(sticky.cookie), maxAgeSeconds: sticky.maxAgeSeconds, key: key,
                                  salt: salt, signer: nil, preferCookie: prefer)
        }
        let signer = HMACSHA256.signer(secret: secret)
        return Routing.Sticky(cookieName: bytes(sticky.cookie), maxAgeSeconds: sticky.maxAgeSeconds, key: key, salt: salt,
                              signer: signer, signatures: signatures.table(secret: secret, salt: salt, signer: signer),
                              preferCookie: prefer)
    }

    private func mirror(_ mirror: Config.Mirror, _ path: ConfigPath) -> Routing.Mirror {
        if !(mirror.percent > 0 && mirror.percent <= 100) {
            error(path.key("percent"), "must be greater than 0 and at most 100, got \(mirror.percent)")
        }
        if mirror.maxBodyBytes < 0 { error(path.key("maxBodyBytes"), "must be at least 0, got \(mirror.maxBodyBytes)") }
        if mirror.idle, config[upstream: mirror.upstream].map({ $0.blueGreen == nil }) == true {
            error(path.key("color"), "upstream \"\(mirror.upstream)\" has no colors: \"idle\" needs a blue/green upstream")
        }
        return Routing.Mirror(upstream: upstreamIndex(mirror.upstream, path.key("upstream")), percent: mirror.percent,
                              maxBodyBytes: mirror.maxBodyBytes, methods: mirror.methods.map { Array($0.uppercased().utf8) },
                              hostSuffix: mirror.hostSuffix.map(bytes), stripHeaders: mirror.stripHeaders.map(lowercasedBytes),
                              compare: mirror.compare.map(\.spec) ?? ShadowCompareSpec(), idle: mirror.idle)
    }
}

private func bytes(_ text: String) -> Bytes { Array(text.utf8) }

/// Header names and hosts compare case-insensitively; the request path lowercases only ASCII.
private func lowercasedBytes(_ text: String) -> Bytes {
    text.utf8.map { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) ? $0 + 32 : $0 }
}
