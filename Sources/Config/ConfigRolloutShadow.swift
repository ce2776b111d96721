// `rollout.shadow`: the shadow stage before a rollout's first step (RolloutShadow.swift).
//
//   "shadow": { "percent": 100, "minCompared": 1000, "minMatchRate": 0.995, "maxP99Ratio": 1.5,
//               "maxSeconds": 1800, "bodyHash": false, "methods": ["GET", "HEAD", "OPTIONS"] }

extension ConfigParser {
    /// The shadow stage of a rollout of `variant` on `split`; its copies go to `upstream`
    /// (default: the variant's own upstream, the new version; for a blue/green release,
    /// `defaultUpstream`, whose idle color gets them).
    func rolloutShadow(_ value: ConfigValue, split: Config.Split?, variant: String?, upstreams: [String],
                       defaultUpstream: String? = nil) -> RolloutShadowPlan? {
        guard let object = value.object(keys: ["upstream", "percent", "minCompared", "minMatchRate", "maxP99Ratio", "maxSeconds",
                                               "bodyHash", "methods"])
        else { return nil }
        var upstream = split?.variants.first { $0.name == variant }?.upstream ?? defaultUpstream
        if let field = object["upstream"], let name = field.nonEmptyString() {
            if upstreams.contains(name) {
                upstream = name
            } else {
                field.error("unknown upstream \"\(name)\"" + ConfigTokens.suggestion(for: name, among: upstreams))
            }
        }
        var plan = RolloutShadowPlan(upstream: upstream ?? "")
        if let field = object["percent"], let x = field.number() {
            if x > 0 && x <= 100 { plan.percent = x } else { field.error("must be above 0 and at most 100, got \(x)") }
        }
        plan.minCompared = object.int("minCompared", default: 1000, 1...1_000_000_000)
        if let field = object["minMatchRate"], let x = field.number() {
            if (0...1).contains(x) { plan.minMatchRate = x } else { field.error("must be a share from 0 to 1, got \(x)") }
        }
        if let field = object["maxP99Ratio"], let x = field.number() {
            if x > 0 { plan.maxP99Ratio = x } else { field.error("must be greater than 0, got \(x)") }
        }
        plan.maxSeconds = object.int("maxSeconds", default: 1800, 1...RolloutPlan.maxStepSecondsLimit)
        if let field = object["bodyHash"] { plan.bodyHash = field.bool() ?? false }
        if let field = object["methods"], let list = field.array() {
            var methods: [String] = []
            for item in list {
                guard let name = item.string() else { continue }
                if ConfigTokens.isToken(name) { methods.append(name.uppercased()) } else { item.error("\"\(name)\" is not a method") }
            }
            if methods.isEmpty { field.error("must list at least one method") } else { plan.methods = methods }
        }
        guard upstream != nil else { return nil }
        // (A variant of the idle color shares its upstream with the baseline: its copies go to
        // that idle color.)
        let idleVariant = split?.variants.first { $0.name == variant }?.idle == true
        if !idleVariant, plan.upstream == split?.variants.first(where: { $0.name != variant && $0.weight > 0 })?.upstream {
            object.error("the shadow upstream \"\(plan.upstream)\" serves the route's users: copies must go to the new version")
        }
        return plan
    }
}
