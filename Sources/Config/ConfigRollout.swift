// A route's `rollout`: which variant, its steps (a preset or a list), the gates, the window, a
// start time for fleets and where the gates read their numbers. Checked against the route's split.
import Foundation

extension ConfigParser {
    static let rolloutKeys = ["variant", "steps", "preset", "stepSeconds", "maxStepSeconds", "gates", "baseline",
                              "window", "startAt", "gateSource", "shadow", "flip"]

    func rollout(_ value: ConfigValue, target: Config.Target?, upstreams: [String] = []) -> RolloutPlan? {
        guard let object = value.object(keys: Self.rolloutKeys) else { return nil }
        let variants: [String]
        switch target {
        case .split(let split)?:
            variants = split.variants.map(\.name)
        case .upstream(let name)?:
            guard object.has("flip") else {
                value.error("needs a route with a \"split\" (a rollout moves weight between variants), "
                            + "or \"flip\" on a blue/green upstream")
                return nil
            }
            for key in Self.rolloutKeys where !["flip", "gates", "shadow"].contains(key) && object.has(key) {
                object[key]?.error("not with \"flip\": a blue/green release flips, then bakes on its gates")
            }
            // A shadow stage first: copies to the idle color (the next version), compared.
            let shadow = object["shadow"].flatMap { rolloutShadow($0, split: nil, variant: nil, upstreams: upstreams, defaultUpstream: name) }
            let gates = object["gates"].map(rolloutGates) ?? RolloutGates()
            if gates.maxErrorRate == nil && gates.maxP99Ratio == nil {
                object.error("a flip bakes on \"gates\": give maxErrorRate and/or maxP99Ratio")
            }
            guard let flip = object["flip"].flatMap({ rolloutFlip($0, upstream: name) }) else { return nil }
            return RolloutPlan(variant: name, baseline: name, steps: [100], stepSeconds: flip.bakeSeconds, gates: gates, shadow: shadow,
                               flip: flip)
        case nil: return nil
        }
        var variant: String?
        if let field = object.required("variant"), let name = field.nonEmptyString() {
            if variants.contains(name) { variant = name } else {
                field.error("unknown variant \"\(name)\"" + ConfigTokens.suggestion(for: name, among: variants))
            }
        }
        var baseline: String?
        if let field = object["baseline"], let name = field.nonEmptyString() {
            if !variants.contains(name) {
                field.error("unknown variant \"\(name)\"" + ConfigTokens.suggestion(for: name, among: variants))
            } else if name == variant {
                field.error("must be another variant than \"variant\"")
            } else {
                baseline = name
            }
        } else if !object.has("baseline") {
            baseline = variants.first { $0 != variant }
            if baseline == nil && variant != nil { value.error("the split needs another variant to serve as the baseline") }
        }

        var steps: [Int]?
        var stepSeconds: Int?
        if object.atMostOne(of: ["steps", "preset"]) == 0 { object.error("needs \"steps\" or \"preset\"") }
        if let field = object["preset"], let name = field.string() {
            if let preset = RolloutPlan.presets[name] {
                steps = preset.steps
                stepSeconds = preset.stepSeconds
            } else {
                let names = RolloutPlan.presets.keys.sorted()
                field.error("unknown preset \"\(name)\"" + ConfigTokens.suggestion(for: name, among: names)
                            + " (one of \(names.joined(separator: ", ")))")
            }
        }
        var approvals: [Int] = []
        if let field = object["steps"], let elements = field.array() {
            // "approve" between two steps: the second waits for `rollout approve`.
            var list: [Int] = []
            var valid = true
            for element in elements {
                if element.node.isString {
                    guard element.string() == "approve" else {
                        element.error("must be a percent or \"approve\"")
                        valid = false
                        continue
                    }
                    if list.isEmpty || approvals.last == list.count {
                        element.error("\"approve\" goes between two steps (once)")
                        valid = false
                    }
                    approvals.append(list.count)
                } else if let n = element.int(1...100) {
                    list.append(n)
                } else {
                    valid = false
                }
            }
            if approvals.last == list.count && valid {
                field.error("\"approve\" must come before a step")
                valid = false
            }
            if valid {
                if let problem = RolloutPlan.stepsProblem(list) { field.error(problem) } else { steps = list }
            }
        }
        if let field = object["stepSeconds"], let n = field.int(0...86_400 * 7) { stepSeconds = n }
        let seconds = stepSeconds ?? 300
        var maxStepSeconds: Int?
        if let field = object["maxStepSeconds"], let n = field.int(0...86_400 * 7) {
            if n < seconds { field.error("must be at least stepSeconds (\(seconds)), got \(n)") } else { maxStepSeconds = n }
        }
        let gates = object["gates"].map(rolloutGates) ?? RolloutGates()
        if gates.maxSRM != nil, case .split(let split)? = target, split.experiment == nil {
            object["gates"]?.error("\"maxSRM\" judges the route's experiment: add \"experiment\" to the route")
        }
        let window = object["window"].flatMap(rolloutWindow)
        var startAt: Double?
        if let field = object["startAt"], let text = field.string() {
            if let t = Self.rfc3339(text) { startAt = t } else {
                field.error("\"\(text)\" is not an RFC 3339 time like \"2026-03-01T02:00:00Z\"")
            }
        }
        var prometheus: String?
        var selector: String?
        var tokenFile: String?
        var caFile: String?
        var maxInvalidReadings: Int?
        if let field = object["gateSource"],
           let source = field.object(keys: ["prometheus", "selector", "bearerTokenFile", "caFile", "maxInvalidReadings"]) {
            if let url = source.required("prometheus"), let text = url.nonEmptyString() {
                if PrometheusTarget(url: text) != nil { prometheus = text } else {
                    url.error("\"\(text)\" is not an http:// or https://HOST:PORT URL")
                }
            }
            if let field = source["selector"], let text = field.string() {
                if let problem = PrometheusRules.selectorProblem(text) {
                    field.error("\(problem) (label matchers like \(PrometheusRules.defaultSelector))")
                } else if text != PrometheusRules.defaultSelector {
                    selector = text
                }
            }
            if let field = source["bearerTokenFile"], let path = field.nonEmptyString() {
                // Read now so that a missing or unusable token is a config error; the queries
                // read it again (it may rotate).
                switch ConfigFiles.readWithOwner(path) {
                case .failure(let reason): field.error("cannot read \"\(path)\": \(reason)")
                case .success(let file):
                    if let problem = PrometheusRules.tokenProblem(Self.strippingTrailingNewlines(file.bytes)) {
                        field.error("the token in \"\(path)\" is unusable: \(problem)")
                    } else {
                        tokenFile = path
                    }
                    field.names(file: path)
                    if let problem = FileTrust.secretFileProblem(path, mode: file.mode, group: file.group, serviceGroup: serviceGroup,
                                                                 use: "query Prometheus as the proxy") {
                        field.warning(problem)
                    }
                }
            }
            if let field = source["caFile"], let path = field.nonEmptyString() {
                // Read now so that a missing CA file is a config error, not a failing query.
                if case .failure(let reason) = ConfigFiles.read(path) {
                    field.error("cannot read \"\(path)\": \(reason)")
                } else if prometheus.map({ !$0.hasPrefix("https://") }) ?? false {
                    field.error("a CA file verifies an https:// Prometheus; \"prometheus\" is not one")
                } else {
                    field.names(file: path)
                    caFile = path
                }
            }
            if let field = source["maxInvalidReadings"], let n = field.int(PrometheusRules.maxInvalidReadingsRange) {
                if n != PrometheusRules.defaultMaxInvalidReadings { maxInvalidReadings = n }
            }
        }
        var split: Config.Split?
        if case .split(let s)? = target { split = s }
        let shadow = object["shadow"].flatMap { rolloutShadow($0, split: split, variant: variant, upstreams: upstreams) }
        if !approvals.isEmpty, startAt != nil {
            object["steps"]?.error("\"approve\" is not for a fleet's clock-driven steps (\"startAt\")")
        }
        if shadow != nil, startAt != nil {
            object["shadow"]?.error("not with \"startAt\": a fleet's clock-driven steps cannot wait for a shadow stage")
        }
        // Steps, then a flip: the variant is the idle color of the baseline's blue/green upstream;
        // at its last step the flip makes it live and the baseline serves everyone again.
        var flip: RolloutFlipPlan?
        if let field = object["flip"], let variant, let baseline {
            let v = split?.variants.first { $0.name == variant }
            let b = split?.variants.first { $0.name == baseline }
            if let v, let b, !(v.idle && !b.idle && v.upstream == b.upstream) {
                field.error("on a split, the variant must be the idle color (\"color\": \"idle\") of the baseline's "
                            + "blue/green upstream, so that the flip makes it live")
            } else if startAt != nil {
                field.error("not with \"startAt\": a fleet's clock-driven steps end at 100%, not in a flip")
            } else if let v {
                flip = rolloutFlip(field, upstream: v.upstream)
                if gates.maxErrorRate == nil && gates.maxP99Ratio == nil {
                    object.error("a flip bakes on \"gates\": give maxErrorRate and/or maxP99Ratio")
                }
            }
        }
        guard let variant, let baseline, let steps else { return nil }
        return RolloutPlan(variant: variant, baseline: baseline, steps: steps, stepSeconds: seconds, maxStepSeconds: maxStepSeconds,
                           gates: gates, window: window, startAt: startAt, prometheus: prometheus, prometheusSelector: selector,
                           prometheusBearerTokenFile: tokenFile, prometheusCAFile: caFile, maxInvalidReadings: maxInvalidReadings,
                           shadow: shadow, approvals: approvals.isEmpty ? nil : approvals, flip: flip)
    }

    private func rolloutGates(_ value: ConfigValue) -> RolloutGates {
        var gates = RolloutGates()
        guard let object = value.object(keys: ["maxErrorRate", "maxErrorRateRatio", "maxP99Ratio", "minRequests", "maxSRM", "dryRun",
                                               "webhook"])
        else { return gates }
        if let field = object["webhook"] { gates.webhook = rolloutWebhook(field) }
        if let field = object["dryRun"] {
            // true: every gate; or the names of the gates to try without acting on them.
            if field.isArray, let list = field.array() {
                var names: [String] = []
                for item in list {
                    guard let name = item.string() else { continue }
                    if RolloutGates.names.contains(name) {
                        names.append(name)
                    } else {
                        item.error("unknown gate \"\(name)\"" + ConfigTokens.suggestion(for: name, among: RolloutGates.names))
                    }
                }
                gates.dryRun = names
            } else if let all = field.bool() {
                gates.dryRun = all ? RolloutGates.names : nil
            }
        }
        if let field = object["maxSRM"], let x = field.number() {
            if x > 0 && x < 1 { gates.maxSRM = x } else { field.error("must be a p-value between 0 and 1 (exclusive), got \(x)") }
        }
        if let field = object["maxErrorRate"], let x = field.number() {
            if (0...1).contains(x) { gates.maxErrorRate = x } else { field.error("must be a share from 0 to 1, got \(x)") }
        }
        for key in ["maxErrorRateRatio", "maxP99Ratio"] {
            guard let field = object[key], let x = field.number() else { continue }
            guard x > 0 else {
                field.error("must be greater than 0, got \(x)")
                continue
            }
            if key == "maxErrorRateRatio" { gates.maxErrorRateRatio = x } else { gates.maxP99Ratio = x }
        }
        gates.minRequests = object.int("minRequests", default: 0, 0...1_000_000_000)
        return gates
    }

    private func rolloutWindow(_ value: ConfigValue) -> RolloutWindow? {
        guard let object = value.object(keys: ["start", "end", "timeZone"]) else { return nil }
        func time(_ key: String) -> Int? {
            guard let field = object.required(key), let text = field.string() else { return nil }
            guard let m = RolloutWindow.minutes(text) else {
                field.error("\"\(text)\" is not a time like \"02:00\" (HH:MM, 24-hour)")
                return nil
            }
            return m
        }
        let start = time("start"), end = time("end")
        var zone = "UTC"
        if let field = object["timeZone"], let name = field.nonEmptyString() {
            if TimeZone(identifier: name) != nil { zone = name } else { field.error("unknown time zone \"\(name)\"") }
        }
        guard let start, let end else { return nil }
        return RolloutWindow(start: start, end: end, timeZone: zone)
    }

    /// Unix seconds of an RFC 3339 time (fractional seconds allowed).
    static func rfc3339(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)?.timeIntervalSince1970
    }
}
