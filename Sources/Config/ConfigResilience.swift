// The upstream keys that keep dead endpoints out and bound what an upstream is asked for:
// `healthCheck` (also per color), `failOpen`, `outlierDetection`, `retries`, `maxConnections`,
// `maxPending`, `affectsReadiness`. Read into a Routing.UpstreamPolicy.
import Routing

extension ConfigParser {
    static let resilienceKeys = ["healthCheck", "failOpen", "outlierDetection", "retries", "maxConnections", "maxPending",
                                 "affectsReadiness"]

    /// The policy keys of an upstream object (`blue`/`green` health checks are added by the
    /// caller).
    func upstreamPolicy(_ object: ConfigObject) -> UpstreamPolicy {
        var policy = UpstreamPolicy()
        if let value = object["healthCheck"] { policy.healthCheck = healthCheck(value) }
        if let value = object["failOpen"] { policy.failOpen = value.bool() ?? false }
        if let value = object["affectsReadiness"] { policy.affectsReadiness = value.bool() ?? true }
        if let value = object["outlierDetection"] { policy.outlierDetection = outlierDetection(value) }
        if let value = object["retries"] { policy.retries = retries(value) }
        policy.maxConnections = object.int("maxConnections", default: 0, 0...1_000_000)
        policy.maxPending = object.int("maxPending", default: 0, 0...1_000_000)
        if object.has("maxPending") && policy.maxConnections == 0 {
            object["maxPending"]?.error("needs \"maxConnections\": requests wait only for a connection limit")
        }
        return policy
    }

    func healthCheck(_ value: ConfigValue) -> HealthCheck? {
        guard let object = value.object(keys: ["path", "intervalMs", "timeoutMs", "unhealthyAfter", "healthyAfter",
                                               "expectStatus", "hostHeader"]) else { return nil }
        var check = HealthCheck()
        if let field = object["path"], let path = field.string() {
            if path.hasPrefix("/") && !path.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) {
                check.path = path
            } else {
                field.error("must start with \"/\" and hold no spaces or line breaks")
            }
        }
        check.intervalMs = object.int("intervalMs", default: check.intervalMs, 10...86_400_000)
        check.timeoutMs = object.int("timeoutMs", default: min(check.timeoutMs, check.intervalMs), 1...86_400_000)
        if check.timeoutMs > check.intervalMs {
            (object["timeoutMs"] ?? object.value).error("must not exceed intervalMs (\(check.intervalMs)), got \(check.timeoutMs)")
        }
        check.unhealthyAfter = object.int("unhealthyAfter", default: check.unhealthyAfter, 1...1_000)
        check.healthyAfter = object.int("healthyAfter", default: check.healthyAfter, 1...1_000)
        if let field = object["expectStatus"] {
            let items: [ConfigValue] = field.node.isString ? [field] : (field.array() ?? [])
            if items.isEmpty && !field.node.isString { field.error("must list at least one status") }
            var classes: UInt8 = 0
            var codes: [Int] = []
            for item in items {
                guard let text = item.string() else { continue }
                if text.count == 3, let first = text.first?.wholeNumberValue, (1...5).contains(first),
                   text.dropFirst().lowercased() == "xx" {
                    classes |= 1 << UInt8(first)
                } else if let code = Int(text), (100...599).contains(code) {
                    codes.append(code)
                } else {
                    item.error("expected a status class (\"2xx\") or a status (\"204\"), got \"\(text)\"")
                }
            }
            if classes != 0 || !codes.isEmpty {
                check.expectClasses = classes
                check.expectCodes = codes
            }
        }
        if let field = object["hostHeader"], let host = field.nonEmptyString() {
            if host.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) {
                field.error("must hold no spaces or line breaks")
            } else {
                check.hostHeader = host
            }
        }
        return check
    }

    /// `false` turns ejection off; an object sets it.
    func outlierDetection(_ value: ConfigValue) -> OutlierDetection {
        if case .bool(let on) = value.node.value { return on ? OutlierDetection() : .off }
        guard let object = value.object(keys: ["consecutiveFailures", "baseEjectionTimeMs", "maxEjectionTimeMs", "count5xx",
                                               "maxEjectionPercent"]) else {
            return OutlierDetection()
        }
        var od = OutlierDetection()
        od.consecutiveFailures = object.int("consecutiveFailures", default: od.consecutiveFailures, 0...1_000_000)
        if let field = object["count5xx"], let on = field.bool() { od.count5xx = on }
        od.maxEjectionPercent = object.int("maxEjectionPercent", default: od.maxEjectionPercent, 0...100)
        od.baseEjectionTimeMs = object.int("baseEjectionTimeMs", default: od.baseEjectionTimeMs, 1...86_400_000)
        od.maxEjectionTimeMs = object.int("maxEjectionTimeMs", default: max(od.maxEjectionTimeMs, od.baseEjectionTimeMs),
                                          1...86_400_000)
        if od.maxEjectionTimeMs < od.baseEjectionTimeMs {
            (object["maxEjectionTimeMs"] ?? object.value).error(
                "must be at least baseEjectionTimeMs (\(od.baseEjectionTimeMs)), got \(od.maxEjectionTimeMs)")
        }
        return od
    }

    /// A `retries` object. Without one, a failed connect is tried on the next endpoint (no budget).
    func retries(_ value: ConfigValue) -> RetryPolicy {
        guard let object = value.object(keys: ["attempts", "on", "budgetPercent", "minRetries"]) else { return .connectOnly }
        var policy = RetryPolicy(attempts: 2, onConnect: true, onReset: false, onStatus: (0, 0), budgetPercent: 20, minRetries: 3)
        policy.attempts = object.int("attempts", default: policy.attempts, 1...10)
        if let field = object["on"], let items = field.array() {
            policy.onConnect = false
            for item in items {
                guard let text = item.string() else { continue }
                switch text {
                case "connect": policy.onConnect = true
                case "reset": policy.onReset = true
                case "5xx": for s in 500...599 { policy.retry(status: s) }
                default:
                    if let code = Int(text), (500...599).contains(code) {
                        policy.retry(status: code)
                    } else {
                        item.error("expected \"connect\", \"reset\", \"5xx\" or a status from 500 to 599, got \"\(text)\"")
                    }
                }
            }
        }
        policy.budgetPercent = object.int("budgetPercent", default: 20, 0...100)
        policy.minRetries = object.int("minRetries", default: policy.minRetries, 0...1_000_000)
        return policy
    }
}
