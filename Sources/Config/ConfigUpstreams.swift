// The `upstreams` section: plain pools and blue/green upstreams, their endpoints, preview header
// and warmup.
import Routing
import TLS

/// Every name under `upstreams`, valid or not, so a route naming an upstream whose body has
/// errors is not also reported as unknown.
struct DeclaredUpstreams {
    var names: [String] = []
    var lines: [String: Int] = [:]
}

extension ConfigParser {
    static let defaultPreviewHeader = "X-Switchyard-Preview"

    func upstreams(_ value: ConfigValue) -> ([Config.Upstream], DeclaredUpstreams) {
        var declared = DeclaredUpstreams()
        guard let map = value.map() else { return ([], declared) }
        if map.members.isEmpty { value.error("must name at least one upstream") }
        var upstreams: [Config.Upstream] = []
        for member in map.members {
            declared.names.append(member.key)
            declared.lines[member.key] = member.line
        }
        for (name, field) in map.entries {
            if !ConfigTokens.isName(name) {
                diagnostics.error(field.path, line: declared.lines[name], "invalid upstream name: \(ConfigTokens.nameRule)")
            }
            if let upstream = upstream(name, field) { upstreams.append(upstream) }
        }
        upstreams.sort { $0.name < $1.name }
        return (upstreams, declared)
    }

    private func upstream(_ name: String, _ value: ConfigValue) -> Config.Upstream? {
        guard let object = value.object(keys: ["endpoints", "maxInFlight", "maxBufferBytes", "blue", "green", "live", "preview", "warmup",
                                               "drainTunnelsMs",
                                               "hostHeader", "resolveEveryMs", "tls", "setHeaders", "auth"] + Self.resilienceKeys)
        else { return nil }
        var policy = upstreamPolicy(object)
        let maxInFlight = object.int("maxInFlight", default: Routing.Upstream.defaultMirrorMaxInFlight, 1...1_000_000)
        let maxBufferBytes = object.int("maxBufferBytes", default: Routing.Upstream.defaultMirrorMaxBufferBytes, 1...(1 << 40))
        let reach = reachSettings(object)
        let isBlueGreen = object.has("blue") || object.has("green")
        if object.has("endpoints") && isBlueGreen {
            object.error("has both \"endpoints\" and \"blue\"/\"green\"; use one")
            return nil
        }
        if !isBlueGreen {
            for key in ["live", "preview", "warmup", "drainTunnelsMs"] {
                object[key]?.error("only allowed on a blue/green upstream")
            }
            guard let endpoints = object["endpoints"] else {
                object.error("needs \"endpoints\", or \"blue\" and \"green\"")
                return nil
            }
            if object.has("tls") && reach.tls == nil || object.has("auth") && reach.auth == nil { return nil }
            return pool(endpoints).map {
                reach.applied(to: Config.Upstream(name: name, kind: .pool($0), maxInFlight: maxInFlight, maxBufferBytes: maxBufferBytes,
                                                  policy: policy))
            }
        }

        let blue = object.required("blue").flatMap(colorPool)
        let green = object.required("green").flatMap(colorPool)
        if object.has("tls") && reach.tls == nil || object.has("auth") && reach.auth == nil { return nil }
        for color in [Color.blue, .green] {
            // The color object's keys are checked by colorPool; only its check is read here.
            if let v = object[color.name], case .object(let members) = v.node.value,
               let m = members.first(where: { $0.key == "healthCheck" }) {
                let field = ConfigValue(node: m.value, path: v.path.key("healthCheck"), diagnostics: diagnostics)
                policy.colorHealthChecks[Int(color.rawValue)] = healthCheck(field)
            }
        }
        var live: Color?
        if let field = object.required("live"), let text = field.string() {
            switch text {
            case "blue": live = .blue
            case "green": live = .green
            default: field.error("must be \"blue\" or \"green\", got \"\(text)\"")
            }
        }
        let preview = object["preview"].flatMap { steeringHeader($0, default: Self.defaultPreviewHeader) }
        let warmup = object["warmup"].flatMap(self.warmup)
        guard let blue, let green, let live else { return nil }
        var bg = Config.BlueGreen(blue: blue.pool, green: green.pool, live: live, previewHeader: preview?.0,
                                  previewTrust: preview?.1 ?? Config.Trust(), warmup: warmup)
        bg.drainTunnelsMs = object.int("drainTunnelsMs", default: 0, 0...86_400_000)
        bg.blueSettings = blue.settings
        bg.greenSettings = green.settings
        return reach.applied(to: Config.Upstream(name: name, kind: .blueGreen(bg), maxInFlight: maxInFlight, maxBufferBytes: maxBufferBytes,
                                                 policy: policy))
    }

    /// A color: its endpoints, its own health check (read by the caller), and the Host and TLS it
    /// sets for itself. Nil when any of it is invalid.
    private func colorPool(_ value: ConfigValue) -> (pool: Config.Pool, settings: Config.ColorSettings)? {
        guard let object = value.object(keys: ["endpoints", "healthCheck", "hostHeader", "tls", "setHeaders", "auth"]) else { return nil }
        let tls = object["tls"].flatMap(upstreamTLS)
        let auth = object["auth"].flatMap(upstreamAuth)
        if object.has("tls") && tls == nil || object.has("auth") && auth == nil { return nil }
        var settings = Config.ColorSettings(hostHeader: object["hostHeader"].flatMap(hostHeader), tls: tls)
        settings.setHeaders = object["setHeaders"].map(setHeaders)
        settings.auth = auth
        return object.required("endpoints").flatMap(pool).map { ($0, settings) }
    }

    /// How the upstream's endpoints are reached (hostHeader, resolveEveryMs, tls), what every
    /// request to them carries (setHeaders) and how it is signed (auth), whatever its kind.
    private func reachSettings(_ object: ConfigObject) -> ReachSettings {
        ReachSettings(hostHeader: object["hostHeader"].flatMap(hostHeader),
                      resolveEveryMs: object.int("resolveEveryMs", default: Config.Upstream.defaultResolveEveryMs, 100...86_400_000),
                      tls: object["tls"].flatMap(upstreamTLS), setHeaders: object["setHeaders"].map(setHeaders) ?? [],
                      auth: object["auth"].flatMap(upstreamAuth))
    }

    /// An `endpoints` array: addresses, or `{address, weight}` objects; no address twice.
    private func pool(_ value: ConfigValue) -> Config.Pool? {
        guard let elements = value.array() else { return nil }
        if elements.isEmpty {
            value.error("must list at least one endpoint")
            return nil
        }
        var endpoints: [Config.Endpoint] = []
        var seen: [String: Int] = [:]  // by numeric address, or name as written
        for (index, element) in elements.enumerated() {
            guard let endpoint = endpoint(element) else { continue }
            if let first = seen[endpoint.address.description] {
                element.error("duplicate endpoint \(endpoint.address) (also [\(first)])")
                continue
            }
            seen[endpoint.address.description] = index
            endpoints.append(endpoint)
        }
        return endpoints.count == elements.count ? Config.Pool(endpoints: endpoints) : nil
    }

    private func endpoint(_ value: ConfigValue) -> Config.Endpoint? {
        if value.node.isString { return endpointAddress(value).map { Config.Endpoint(address: $0) } }
        guard case .object = value.node.value else {
            value.error("expected an address string or an object with \"address\", got \(value.node.kindDescription)")
            return nil
        }
        guard let object = value.object(keys: ["address", "weight"]) else { return nil }
        let weight = object.int("weight", default: 1, 1...1_000_000)
        return object.required("address").flatMap(endpointAddress).map { Config.Endpoint(address: $0, weight: weight) }
    }

    /// An endpoint's address. A host name is kept as written, resolved when the proxy runs;
    /// `check` (given `nameCheck`) tries it now and warns when it does not resolve, which
    /// `run` would refuse.
    private func endpointAddress(_ value: ConfigValue) -> Address? {
        guard let text = value.string() else { return nil }
        let address: Address
        do throws(AddressError) { address = try Address(endpoint: text) } catch {
            value.error(error.reason)
            return nil
        }
        if let host = address.hostName, let nameCheck, let failure = nameCheck.failure(host, address.port) {
            value.warning("cannot resolve \"\(host)\" (\(failure)); `run` needs at least one address for it")
        }
        return address
    }

    private func warmup(_ value: ConfigValue) -> Config.Warmup? {
        guard let object = value.object(keys: ["path", "requests", "timeoutMs"]) else { return nil }
        var warmup = Config.Warmup()
        if let field = object["path"], let path = field.string() {
            if path.hasPrefix("/") { warmup.path = path } else { field.error("must start with \"/\"") }
        }
        warmup.requests = object.int("requests", default: warmup.requests, 1...1_000_000)
        warmup.timeoutMs = object.int("timeoutMs", default: warmup.timeoutMs, 1...Int.max)
        return warmup
    }
}

private struct ReachSettings {
    var hostHeader: String?
    var resolveEveryMs: Int
    var tls: Config.UpstreamTLS?
    var setHeaders: [Config.SetHeader]
    var auth: Config.UpstreamAuth?

    func applied(to upstream: Config.Upstream) -> Config.Upstream {
        var upstream = upstream
        upstream.hostHeader = hostHeader
        upstream.resolveEveryMs = resolveEveryMs
        upstream.tls = tls
        upstream.setHeaders = setHeaders
        upstream.auth = auth
        return upstream
    }
}
