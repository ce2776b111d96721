// A route's `split`: weighted variants, the rules that pin requests to a variant, the override
// header and who may use it, and sticky assignment with its cookie-signing secret.
import Glibc
import Routing

extension ConfigParser {
    package static let maxVariants = 64
    package static let maxWeight = 1_000_000

    /// Reads `split` and its companions `rules`, `override` and `sticky` from the route.
    func split(_ route: ConfigObject, routeName: String, upstreams: [String]) -> Config.Split? {
        guard let value = route["split"], let elements = value.array() else { return nil }
        if elements.isEmpty { value.error("must list at least one variant") }
        if elements.count > Self.maxVariants {
            value.error("at most \(Self.maxVariants) variants, got \(elements.count)")
        }
        var variants: [Config.Variant] = []
        var names: [String] = []
        var seen: [String: Int] = [:]
        var weightsComplete = true
        var total = 0
        for (index, element) in elements.enumerated() {
            guard let object = element.object(keys: ["variant", "upstream", "weight", "color"]) else {
                weightsComplete = false
                continue
            }
            var name: String?
            if let field = object.required("variant"), let text = field.nonEmptyString() {
                names.append(text)
                if !ConfigTokens.isName(text) {
                    field.error("invalid variant name: \(ConfigTokens.nameRule)")
                } else if let first = seen[text] {
                    field.error("duplicate variant \"\(text)\" (also split[\(first)])")
                } else {
                    seen[text] = index
                    name = text
                }
            }
            let upstream = object.required("upstream").flatMap { upstreamReference($0, upstreams: upstreams) }
            let weight = object.required("weight").flatMap { $0.int(0...Self.maxWeight) }
            if let weight { total += weight } else { weightsComplete = false }
            let idle = object["color"].flatMap(colorChoice) ?? false
            if let name, let upstream, let weight {
                variants.append(Config.Variant(name: name, upstream: upstream, weight: weight, idle: idle))
            }
        }
        if weightsComplete && !elements.isEmpty && total == 0 {
            value.error("the total weight must be greater than 0")
        }
        let rules = route["rules"].map { self.rules($0, variants: names) } ?? []
        var overrideHeader: String?
        var overrideTrust = Config.Trust()
        if let value = route["override"], !value.isNull,
           let (header, trust) = steeringHeader(value, default: Config.Split.defaultOverrideHeader) {
            overrideHeader = header
            overrideTrust = trust
        }
        let sticky = route["sticky"].flatMap { self.sticky($0, routeName: routeName) }
        let experiment = self.experiment(route, routeName: routeName, variants: names, salt: sticky?.salt)
        return Config.Split(variants: variants, rules: rules, overrideHeader: overrideHeader, overrideTrust: overrideTrust,
                            sticky: sticky, experiment: experiment)
    }

    /// `{ "header": NAME, "trustedSources": [CIDR...], "secretHeader": NAME, "secretFile" | "secretEnv" }`
    /// for the override and preview headers. Without a source list or a secret anyone could use
    /// the header, so one of them is required.
    func steeringHeader(_ value: ConfigValue, default fallback: String) -> (String, Config.Trust)? {
        guard let object = value.object(keys: ["header", "trustedSources", "secretHeader", "secretFile", "secretEnv"])
        else { return nil }
        let header = object["header"].map(headerName) ?? fallback
        var trust = Config.Trust()
        if let field = object["trustedSources"] { trust.trustedSources = cidrs(field) }
        if let field = object["secretHeader"], let name = headerName(field) { trust.secretHeader = name }
        if object.atMostOne(of: ["secretFile", "secretEnv"]) == 1 {
            if let field = object["secretFile"] { trust.secret = secretFile(field) }
            if let field = object["secretEnv"] { trust.secret = secretEnv(field) }
        } else if object.has("secretHeader") {
            object.error("\"secretHeader\" needs \"secretFile\" or \"secretEnv\"")
        }
        if !object.has("trustedSources") && !object.has("secretFile") && !object.has("secretEnv") {
            object.error("needs \"trustedSources\" or \"secretFile\"/\"secretEnv\": otherwise any client could use the header"
                         + " ([\"0.0.0.0/0\", \"::/0\"] trusts every client)")
        }
        guard let header else { return nil }
        return (header, trust)
    }

    /// A list of CIDRs (`10.0.0.0/8`, `::1/128`; a bare address is one host), checked here so
    /// an error has its line.
    func cidrs(_ value: ConfigValue) -> [String] {
        guard let elements = value.array() else { return [] }
        var list: [String] = []
        for element in elements {
            guard let text = element.string() else { continue }
            if case .failure = AddressSet.parse([text]) {
                element.error("\"\(text)\" is not a CIDR (e.g. \"10.0.0.0/8\", \"::1/128\")")
                continue
            }
            list.append(text)
        }
        return list
    }

    private func rules(_ value: ConfigValue, variants: [String]) -> [Config.Rule] {
        guard let elements = value.array() else { return [] }
        if elements.count > Routing.Split.maxRules {
            value.error("at most \(Routing.Split.maxRules) rules, got \(elements.count)")
        }
        var rules: [Config.Rule] = []
        for element in elements {
            guard let object = element.object(keys: ["cookie", "header", "variant"]) else { continue }
            var variant: String?
            if let field = object.required("variant"), let name = field.nonEmptyString() {
                if variants.contains(name) {
                    variant = name
                } else {
                    field.error("unknown variant \"\(name)\"" + ConfigTokens.suggestion(for: name, among: variants))
                }
            }
            let sources = object.atMostOne(of: ["cookie", "header"])
            if sources == 0 { object.error("needs \"cookie\" or \"header\"") }
            var source: Config.RuleSource?
            if sources == 1, let field = object["cookie"], case let (name, value)? = pair(field) {
                if !ConfigTokens.isToken(name) { field.error("\"\(name)\" is not a valid cookie name") }
                if !ConfigTokens.isCookieValue(value) { field.error("\"\(value)\" is not a valid cookie value") }
                source = .cookie(name: name, value: value)
            }
            if sources == 1, let field = object["header"], case let (name, value)? = pair(field) {
                if !ConfigTokens.isToken(name) { field.error("\"\(name)\" is not a valid header name") }
                if !ConfigTokens.isHeaderValue(value) { field.error("the value contains control characters") }
                source = .header(name: name, value: value)
            }
            if let variant, let source { rules.append(Config.Rule(source: source, variant: variant)) }
        }
        return rules
    }

    /// `{"name": "value"}` with exactly one pair.
    private func pair(_ value: ConfigValue) -> (String, String)? {
        guard let map = value.map() else { return nil }
        guard map.members.count == 1, let entry = map.entries.first else {
            value.error("needs exactly one name: value pair, e.g. {\"beta\": \"1\"}, got \(map.members.count)")
            return nil
        }
        return entry.value.string().map { (entry.key, $0) }
    }

    private func sticky(_ value: ConfigValue, routeName: String) -> Config.Sticky? {
        guard let object = value.object(keys: ["cookie", "maxAgeSeconds", "key", "salt", "secretFile", "secretEnv", "prefer"])
        else { return nil }
        var cookie = "sy-" + routeName
        if let field = object["cookie"], let name = field.string() {
            if ConfigTokens.isToken(name) { cookie = name } else { field.error("\"\(name)\" is not a valid cookie name") }
        }
        let maxAge = object.int("maxAgeSeconds", default: 604_800, 1...Int(Int32.max))
        let key = object["key"].flatMap(stickyKey)
        let salt = object["salt"].flatMap { $0.string() } ?? routeName
        var secret: Config.Secret?
        if object.atMostOne(of: ["secretFile", "secretEnv"]) == 1 {
            if let field = object["secretFile"] { secret = secretFile(field) }
            if let field = object["secretEnv"] { secret = secretEnv(field) }
        }
        var prefer: Config.StickyPreference?
        if let field = object["prefer"], let text = field.string() {
            prefer = Config.StickyPreference(rawValue: text)
            if prefer == nil { field.error("must be \"cookie\" or \"key\", got \"\(text)\"") }
        }
        return Config.Sticky(cookie: cookie, maxAgeSeconds: maxAge, key: key, salt: salt, secret: secret, prefer: prefer)
    }

    private func stickyKey(_ value: ConfigValue) -> Config.StickyKey? {
        guard let object = value.object(keys: ["header", "cookie"]) else { return nil }
        let count = object.atMostOne(of: ["header", "cookie"])
        if count == 0 { object.error("needs \"header\" or \"cookie\"") }
        guard count == 1 else { return nil }
        if let field = object["header"] { return headerName(field).map(Config.StickyKey.header) }
        guard let field = object["cookie"], let name = field.string() else { return nil }
        guard ConfigTokens.isToken(name) else {
            field.error("\"\(name)\" is not a valid cookie name")
            return nil
        }
        return .cookie(name)
    }
}
