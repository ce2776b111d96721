// The `routes` section: names, matches, rewrites, targets and mirrors. Splits, rules and sticky
// assignment are in ConfigSplit.swift.

extension ConfigParser {
    package static let maxMirrors = 64

    func routes(_ value: ConfigValue, upstreams: [String]) -> [Config.Route] {
        guard let elements = value.array() else { return [] }
        if elements.isEmpty { value.error("must list at least one route") }
        var routes: [Config.Route] = []
        var seen: [String: Int] = [:]
        for (index, element) in elements.enumerated() {
            // Names are checked for duplicates even in routes with other errors.
            if case .object(let members) = element.node.value,
               let member = members.first(where: { $0.key == "name" }), case .string(let name) = member.value.value {
                if let first = seen[name] {
                    diagnostics.error(element.path.key("name"), line: member.line,
                                      "duplicate route name \"\(name)\" (also routes[\(first)])")
                }
                seen[name] = seen[name] ?? index
            }
            if let route = route(element, upstreams: upstreams) { routes.append(route) }
        }
        return routes
    }

    private func route(_ value: ConfigValue, upstreams: [String]) -> Config.Route? {
        guard let object = value.object(keys: ["name", "match", "rewrite", "upstream", "split", "rules",
                                               "overrideHeader", "override", "variantHeader", "sticky", "mirror", "rollout",
                                               "upgrades", "experiment"])
        else { return nil }
        var name: String?
        if let field = object.required("name"), let text = field.nonEmptyString() {
            if ConfigTokens.isName(text) { name = text } else { field.error("invalid route name: \(ConfigTokens.nameRule)") }
        }
        let match = object["match"].map(self.match) ?? Config.Match()
        let rewrite = object["rewrite"].flatMap(self.rewrite)
        let variantHeader = optionalHeaderName(object, "variantHeader", default: Config.Route.defaultVariantHeader)

        object["overrideHeader"]?.error("replaced by \"override\": { \"header\": NAME, \"trustedSources\": [CIDR, ...] }"
                                        + " (the override header is honoured only for trusted clients)")
        let targets = object.atMostOne(of: ["upstream", "split"])
        if targets == 0 { object.error("needs \"upstream\" or \"split\"") }
        if !object.has("split") {
            for key in ["rules", "sticky", "override", "experiment"] { object[key]?.error("only allowed with \"split\"") }
        }
        var target: Config.Target?
        if targets == 1, let field = object["upstream"] {
            target = upstreamReference(field, upstreams: upstreams).map(Config.Target.upstream)
        }
        if targets == 1, object.has("split") {
            target = split(object, routeName: name ?? "route", upstreams: upstreams).map(Config.Target.split)
        }
        let mirrors = object["mirror"].map { self.mirrors($0, upstreams: upstreams, primary: target) } ?? []

        let rollout = object["rollout"].flatMap { self.rollout($0, target: target, upstreams: upstreams) }
        let upgrades = object["upgrades"].map(self.upgrades) ?? Config.Route.defaultUpgrades

        guard let name, let target else { return nil }
        return Config.Route(name: name, match: match, rewrite: rewrite, target: target, mirrors: mirrors,
                            variantHeader: variantHeader, rollout: rollout, upgrades: upgrades)
    }

    /// The protocols a route tunnels: tokens, each once (case-insensitively), never h2c; `[]`
    /// turns upgrades off for the route.
    private func upgrades(_ value: ConfigValue) -> [String] {
        guard let elements = value.array() else { return [] }
        var names: [String] = []
        for element in elements {
            guard let name = element.string() else { continue }
            let lowered = name.lowercased()
            if !ConfigTokens.isToken(name) {
                element.error("\"\(name)\" is not a protocol name (a token, without \"/version\")")
            } else if lowered == "h2c" {
                element.error("h2c is never tunnelled: its tunnel would bypass routing, header sanitising and the access log")
            } else if names.contains(lowered) {
                element.error("\"\(name)\" is listed twice (names compare case-insensitively)")
            } else {
                names.append(lowered)
            }
        }
        return names
    }

    /// A reference to an upstream by name, with a suggestion when it is unknown.
    func upstreamReference(_ value: ConfigValue, upstreams: [String]) -> String? {
        guard let name = value.nonEmptyString() else { return nil }
        guard upstreams.contains(name) else {
            value.error("unknown upstream \"\(name)\"" + ConfigTokens.suggestion(for: name, among: upstreams))
            return nil
        }
        return name
    }

    private func match(_ value: ConfigValue) -> Config.Match {
        var match = Config.Match()
        guard let object = value.object(keys: ["host", "pathPrefix", "methods", "headers"]) else { return match }
        if let field = object["host"] {
            let patterns: [ConfigValue]
            if case .array = field.node.value {
                patterns = field.array() ?? []
                if patterns.isEmpty { field.error("must not be empty (leave \"host\" out to match any host)") }
            } else {
                patterns = [field]
            }
            for pattern in patterns {
                guard let text = pattern.string() else { continue }
                if ConfigTokens.isHostPattern(text) {
                    match.hosts.append(text.lowercased())
                } else {
                    pattern.error("\"\(text)\" is not a host like \"api.example.com\" or \"*.example.com\" (no port)")
                }
            }
        }
        if let field = object["pathPrefix"], let prefix = field.string() {
            if prefix.hasPrefix("/") { match.pathPrefix = prefix } else { field.error("must start with \"/\"") }
        }
        if let field = object["methods"], let elements = field.array() {
            if elements.isEmpty { field.error("must not be empty (leave \"methods\" out to match every method)") }
            for element in elements {
                guard let method = element.string() else { continue }
                if method == "*" {
                    element.error("leave \"methods\" out to match every method")
                } else if ConfigTokens.isToken(method) {
                    match.methods.append(method.uppercased())
                } else {
                    element.error("\"\(method)\" is not a valid method")
                }
            }
        }
        if let field = object["headers"], let headers = field.map() {
            for (name, valueField) in headers.entries {
                if !ConfigTokens.isToken(name) { valueField.error("\"\(name)\" is not a valid header name") }
                guard let text = valueField.string() else { continue }
                if !ConfigTokens.isHeaderValue(text) { valueField.error("contains control characters") }
                match.headers.append(Config.HeaderMatch(name: name, value: text == "*" ? nil : text))
            }
        }
        return match
    }

    private func rewrite(_ value: ConfigValue) -> Config.Rewrite? {
        guard let object = value.object(keys: ["stripPrefix", "prefix"]) else { return nil }
        let count = object.atMostOne(of: ["stripPrefix", "prefix"])
        if count == 0 { object.error("needs \"stripPrefix\" or \"prefix\"") }
        guard count == 1 else { return nil }
        let key = object.has("stripPrefix") ? "stripPrefix" : "prefix"
        guard let field = object[key], let path = field.string() else { return nil }
        guard path.hasPrefix("/") else {
            field.error("must start with \"/\"")
            return nil
        }
        return key == "stripPrefix" ? .stripPrefix(path) : .prefix(path)
    }

    private func mirrors(_ value: ConfigValue, upstreams: [String], primary: Config.Target?) -> [Config.Mirror] {
        guard let elements = value.array() else { return [] }
        if elements.count > Self.maxMirrors {
            value.error("at most \(Self.maxMirrors) mirrors, got \(elements.count)")
        }
        let primaryUpstreams: [String]
        switch primary {
        case .upstream(let name): primaryUpstreams = [name]
        case .split(let split): primaryUpstreams = split.variants.map(\.upstream)
        case nil: primaryUpstreams = []
        }
        var mirrors: [Config.Mirror] = []
        var seen: [String: Int] = [:]
        for (index, element) in elements.enumerated() {
            guard let object = element.object(keys: ["upstream", "percent", "maxBodyBytes", "methods", "hostSuffix",
                                                                   "stripHeaders", "compare", "color"])
            else { continue }
            let upstreamField = object.required("upstream")
            let upstream = upstreamField.flatMap { upstreamReference($0, upstreams: upstreams) }
            var percent: Double?
            if let field = object.required("percent"), let number = field.number() {
                if number > 0 && number <= 100 {
                    percent = number
                } else {
                    field.error("must be greater than 0 and at most 100, got \(number.shortDescription)")
                }
            }
            let maxBodyBytes = object.int("maxBodyBytes", default: 1_048_576, 0...Int.max)
            let methods = object["methods"].map(mirrorMethods) ?? Config.Mirror.defaultMethods
            var hostSuffix: String?
            if let field = object["hostSuffix"], let suffix = field.nonEmptyString() {
                if ConfigTokens.isName(suffix) {
                    hostSuffix = suffix
                } else {
                    field.error("may only contain letters, digits, '.', '_' and '-'")
                }
            }
            let stripHeaders = object["stripHeaders"].map(mirrorStripHeaders) ?? []
            let compare = object["compare"].flatMap(mirrorCompare)
            // "idle": copies go to the blue/green upstream's color that is not live (checked to
            // have colors when the snapshot is built).
            let idle = object["color"].flatMap(colorChoice) ?? false
            guard let upstream, let upstreamField, let percent else { continue }
            if let first = seen[upstream] {
                upstreamField.error("duplicate mirror to \"\(upstream)\" (also mirror[\(first)])")
                continue
            }
            seen[upstream] = index
            if primaryUpstreams.contains(upstream) && !idle {
                upstreamField.warning("\"\(upstream)\" also serves this route's requests, so it receives them twice")
            }
            mirrors.append(Config.Mirror(upstream: upstream, percent: percent, maxBodyBytes: maxBodyBytes,
                                         methods: methods, hostSuffix: hostSuffix, stripHeaders: stripHeaders,
                                         compare: compare, idle: idle))
        }
        return mirrors
    }

    /// `"color"` of a mirror or a variant: `"live"` (false) or `"idle"` (true), the blue/green
    /// upstream's color that is not live (checked to have colors when the snapshot is built).
    func colorChoice(_ field: ConfigValue) -> Bool? {
        guard let word = field.string() else { return nil }
        switch word {
        case "live": return false
        case "idle": return true
        default:
            field.error("must be \"live\" or \"idle\", got \"\(word)\"")
            return nil
        }
    }

    /// Header names left out of a mirror's copies: tokens, each once (case-insensitively),
    /// none the proxy writes itself.
    private func mirrorStripHeaders(_ value: ConfigValue) -> [String] {
        guard let elements = value.array() else { return [] }
        var names: [String] = []
        var seen: Set<String> = []
        for element in elements {
            guard let name = element.string() else { continue }
            let lowered = name.lowercased()
            if !ConfigTokens.isToken(name) {
                element.error("\"\(name)\" is not a valid header name")
            } else if Config.Mirror.unstrippableHeaders.contains(lowered) {
                element.error("\"\(name)\" is written by the proxy on every copy and cannot be stripped")
            } else if !seen.insert(lowered).inserted {
                element.error("\"\(name)\" is listed twice (names compare case-insensitively)")
            } else {
                names.append(name)
            }
        }
        return names
    }

    /// `["*"]` means every method and is stored as an empty list.
    private func mirrorMethods(_ value: ConfigValue) -> [String] {
        guard let elements = value.array() else { return [] }
        if elements.isEmpty { value.error("must not be empty (use [\"*\"] for every method)") }
        var methods: [String] = []
        var all = false
        for element in elements {
            guard let method = element.string() else { continue }
            if method == "*" {
                all = true
            } else if ConfigTokens.isToken(method) {
                methods.append(method.uppercased())
            } else {
                element.error("\"\(method)\" is not a valid method")
            }
        }
        if all && elements.count > 1 { value.error("\"*\" means every method and stands alone") }
        return all ? [] : methods
    }
}

extension Double {
    /// `5` rather than `5.0`, for messages.
    fileprivate var shortDescription: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}
