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
        guard let object = value.object(keys: ["endpoints", "maxInFlight", "maxBufferBytes", "blue", "green", "live", "preview", "warmup", "tls"]
                                        + Self.resilienceKeys)
        else { return nil }
        var policy = upstreamPolicy(object)
        let maxInFlight = object.int("maxInFlight", default: Routing.Upstream.defaultMirrorMaxInFlight, 1...1_000_000)
        let maxBufferBytes = object.int("maxBufferBytes", default: Routing.Upstream.defaultMirrorMaxBufferBytes, 1...(1 << 40))
        let isBlueGreen = object.has("blue") || object.has("green")
        if object.has("endpoints") && isBlueGreen {
            object.error("has both \"endpoints\" and \"blue\"/\"green\"; use one")
            return nil
        }
        if !isBlueGreen {
            for key in ["live", "preview", "warmup"] {
                object[key]?.error("only allowed on a blue/green upstream")
            }
            guard let endpoints = object["endpoints"] else {
                object.error("needs \"endpoints\", or \"blue\" and \"green\"")
                return nil
            }
            let tls = object["tls"].flatMap(upstreamTLS)
            if object.has("tls") && tls == nil { return nil }
            return pool(endpoints).map {
                var u = Config.Upstream(name: name, kind: .pool($0), maxInFlight: maxInFlight, maxBufferBytes: maxBufferBytes,
                                        policy: policy)
                u.tls = tls
                return u
            }
        }

        let blueField = object.required("blue")
        let greenField = object.required("green")
        let blue = blueField.flatMap(colorPool)
        let green = greenField.flatMap(colorPool)
        let tls = object["tls"].flatMap(upstreamTLS)
        let blueTLS = blueField.flatMap(colorTLS)
        let greenTLS = greenField.flatMap(colorTLS)
        if (object.has("tls") && tls == nil) || blueTLS == .some(nil) || greenTLS == .some(nil) { return nil }
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
        var bg = Config.BlueGreen(blue: blue, green: green, live: live, previewHeader: preview?.0,
                                  previewTrust: preview?.1 ?? Config.Trust(), warmup: warmup)
        bg.blueTLS = blueTLS ?? nil
        bg.greenTLS = greenTLS ?? nil
        var u = Config.Upstream(name: name, kind: .blueGreen(bg), maxInFlight: maxInFlight, maxBufferBytes: maxBufferBytes, policy: policy)
        u.tls = tls
        return u
    }

    private func colorPool(_ value: ConfigValue) -> Config.Pool? {
        value.object(keys: ["endpoints", "healthCheck", "tls"])?.required("endpoints").flatMap(pool)
    }

    /// A color's own `tls`: nil when it has none, .some(nil) when it is invalid.
    private func colorTLS(_ value: ConfigValue) -> TLSClientSettings?? {
        guard case .object(let members) = value.node.value, let m = members.first(where: { $0.key == "tls" }) else { return nil }
        return .some(upstreamTLS(ConfigValue(node: m.value, path: value.path.key("tls"), diagnostics: value.diagnostics)))
    }

    /// An `endpoints` array: addresses, or `{address, weight}` objects; no address twice.
    private func pool(_ value: ConfigValue) -> Config.Pool? {
        guard let elements = value.array() else { return nil }
        if elements.isEmpty {
            value.error("must list at least one endpoint")
            return nil
        }
        var endpoints: [Config.Endpoint] = []
        var seen: [String: Int] = [:]  // by resolved address
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
        if value.node.isString { return address(value).map { Config.Endpoint(address: $0) } }
        guard case .object = value.node.value else {
            value.error("expected an address string or an object with \"address\", got \(value.node.kindDescription)")
            return nil
        }
        guard let object = value.object(keys: ["address", "weight"]) else { return nil }
        let weight = object.int("weight", default: 1, 1...1_000_000)
        return object.required("address").flatMap(address).map { Config.Endpoint(address: $0, weight: weight) }
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
