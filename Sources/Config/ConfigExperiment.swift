// A split route's `experiment`: its name, where exposures are logged, the sample-ratio alarm and
// the goals that count as conversions.
//
//   "experiment": { "name": "checkout-v2", "exposureLog": "/var/log/switchyard/exposures.jsonl",
//                   "control": "A", "goals": [ { "name": "checkout",
//                     "match": { "method": "POST", "pathPrefix": "/checkout" }, "status": "2xx" } ] }

extension Config {
    public struct Experiment: Sendable, Equatable {
        /// When an exposure line is written: when a unit is first assigned (a cookie is issued),
        /// or also the first time each process sees a unit (what keyed units, which carry no
        /// cookie, need).
        public enum Exposures: String, Sendable, Equatable {
            case assignment, process
        }

        public var name: String
        public var exposureLog: String?
        public var exposures: Exposures
        /// The variant the others are compared with; default the split's first.
        public var control: String
        /// A sample-ratio mismatch is alarmed when its p-value is below this with at least
        /// `minUnits` new units in the weight epoch.
        public var srmThreshold: Double
        public var minUnits: Int
        public var goals: [Goal]

        public static let defaultSRMThreshold = 0.001
        public static let defaultMinUnits = 100

        public init(name: String, exposureLog: String? = nil, exposures: Exposures = .assignment, control: String,
                    srmThreshold: Double = defaultSRMThreshold, minUnits: Int = defaultMinUnits, goals: [Goal] = []) {
            self.name = name
            self.exposureLog = exposureLog
            self.exposures = exposures
            self.control = control
            self.srmThreshold = srmThreshold
            self.minUnits = minUnits
            self.goals = goals
        }
    }

    public struct Goal: Sendable, Equatable {
        public var name: String
        /// Uppercase; empty: any method.
        public var methods: [String]
        public var pathPrefix: String?
        public var statuses: ClosedRange<Int>

        public init(name: String, methods: [String] = [], pathPrefix: String? = nil, statuses: ClosedRange<Int> = 200...299) {
            self.name = name
            self.methods = methods
            self.pathPrefix = pathPrefix
            self.statuses = statuses
        }
    }
}

extension ConfigParser {
    package static let maxGoalsPerExperiment = 16

    /// `experiment` on a split route; it needs `sticky` (a unit must come back as itself).
    func experiment(_ route: ConfigObject, routeName: String, variants: [String], salt: String?) -> Config.Experiment? {
        guard let value = route["experiment"], !value.isNull,
              let object = value.object(keys: ["name", "exposureLog", "exposures", "control", "srmThreshold", "minUnits", "goals"])
        else { return nil }
        if salt == nil { value.error("needs \"sticky\" on the route: an experiment's units must keep their variant") }
        var name = routeName + "." + (salt ?? routeName)
        if let field = object["name"], let text = field.nonEmptyString() {
            if ConfigTokens.isName(text) { name = text } else { field.error("invalid experiment name: \(ConfigTokens.nameRule)") }
        }
        var exposureLog: String?
        if let field = object["exposureLog"], let path = field.nonEmptyString() {
            if path == "stdout" || path == "stderr" || path.hasPrefix("/") {
                exposureLog = path
            } else {
                field.error("must be an absolute path, \"stdout\" or \"stderr\", got \"\(path)\"")
            }
        }
        var exposures = Config.Experiment.Exposures.assignment
        if let field = object["exposures"], let text = field.string() {
            if let mode = Config.Experiment.Exposures(rawValue: text) {
                exposures = mode
            } else {
                field.error("must be \"assignment\" or \"process\", got \"\(text)\"")
            }
        }
        var control = variants.first ?? ""
        if let field = object["control"], let text = field.nonEmptyString() {
            if variants.contains(text) {
                control = text
            } else {
                field.error("unknown variant \"\(text)\"" + ConfigTokens.suggestion(for: text, among: variants))
            }
        }
        var threshold = Config.Experiment.defaultSRMThreshold
        if let field = object["srmThreshold"], let number = field.number() {
            if number > 0 && number < 1 { threshold = number } else { field.error("must be between 0 and 1 (exclusive), got \(number)") }
        }
        let minUnits = object.int("minUnits", default: Config.Experiment.defaultMinUnits, 1...1_000_000_000)
        let goals = object["goals"].map(self.goals) ?? []
        return Config.Experiment(name: name, exposureLog: exposureLog, exposures: exposures, control: control,
                                 srmThreshold: threshold, minUnits: minUnits, goals: goals)
    }

    private func goals(_ value: ConfigValue) -> [Config.Goal] {
        guard let elements = value.array() else { return [] }
        if elements.count > Self.maxGoalsPerExperiment {
            value.error("at most \(Self.maxGoalsPerExperiment) goals, got \(elements.count)")
        }
        var goals: [Config.Goal] = []
        var seen: Set<String> = []
        for element in elements.prefix(Self.maxGoalsPerExperiment) {
            guard let object = element.object(keys: ["name", "match", "status"]) else { continue }
            var name: String?
            if let field = object.required("name"), let text = field.nonEmptyString() {
                if !ConfigTokens.isName(text) {
                    field.error("invalid goal name: \(ConfigTokens.nameRule)")
                } else if !seen.insert(text).inserted {
                    field.error("duplicate goal \"\(text)\"")
                } else {
                    name = text
                }
            }
            var methods: [String] = []
            var pathPrefix: String?
            if let field = object.required("match"), let match = field.object(keys: ["method", "methods", "pathPrefix"]) {
                if match.atMostOne(of: ["method", "methods"]) == 1 {
                    if let m = match["method"], let text = m.nonEmptyString() { methods = goalMethods([text], m) }
                    if let m = match["methods"], let list = m.array() { methods = goalMethods(list.compactMap { $0.string() }, m) }
                }
                if let p = match["pathPrefix"], let text = p.nonEmptyString() {
                    if text.hasPrefix("/") { pathPrefix = text } else { p.error("must start with \"/\", got \"\(text)\"") }
                }
                if methods.isEmpty && pathPrefix == nil {
                    match.error("needs \"method\" or \"pathPrefix\": a goal that matches every request measures nothing")
                }
            }
            let statuses = object["status"].flatMap(statusClass) ?? 200...299
            if let name { goals.append(Config.Goal(name: name, methods: methods, pathPrefix: pathPrefix, statuses: statuses)) }
        }
        return goals
    }

    private func goalMethods(_ names: [String], _ field: ConfigValue) -> [String] {
        var methods: [String] = []
        for name in names {
            if ConfigTokens.isToken(name) { methods.append(name.uppercased()) } else { field.error("\"\(name)\" is not a method") }
        }
        return methods
    }

    /// "2xx" (a class), "200" (one status), "200-399" (a range) or "any".
    private func statusClass(_ value: ConfigValue) -> ClosedRange<Int>? {
        guard let text = value.string() else { return nil }
        let bytes = Array(text.utf8)
        if text == "any" { return 100...599 }
        if bytes.count == 3, bytes[1] == UInt8(ascii: "x"), bytes[2] == UInt8(ascii: "x"),
           let digit = Int(String(UnicodeScalar(bytes[0]))), (1...5).contains(digit) {
            return digit * 100...digit * 100 + 99
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count <= 2, parts.allSatisfy({ $0.count == 3 && $0.allSatisfy(\.isASCII) }),
           let low = Int(parts[0]), let high = Int(parts[parts.count - 1]), 100 <= low, low <= high, high <= 599 {
            return low...high
        }
        value.error("must be a class (\"2xx\"), a status (\"201\"), a range (\"200-399\") or \"any\", got \"\(text)\"")
        return nil
    }
}
