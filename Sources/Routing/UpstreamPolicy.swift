// How an upstream keeps dead endpoints out and protects itself: active health checks, passive
// ejection (outlier detection), retries with a budget, and per-endpoint limits. Plain values,
// validated by the config reader; the proxy's event loops act on them.

/// `"healthCheck"`: a GET sent to every endpoint of the pool every `intervalMs`.
public struct HealthCheck: Sendable, Equatable {
    public var path = "/healthz"
    public var intervalMs = 2_000
    public var timeoutMs = 1_000
    /// Consecutive failed checks that take a healthy endpoint out, and consecutive passed
    /// checks that bring an unhealthy one back.
    public var unhealthyAfter = 3
    public var healthyAfter = 2
    /// Statuses that pass: a class (`"2xx"`) or exact codes, any of them.
    public var expectClasses: UInt8 = 1 << 2   // bit n: nxx
    public var expectCodes: [Int] = []
    /// The Host header; nil: the endpoint's address.
    public var hostHeader: String?

    public init() {}

    public func passes(_ status: Int) -> Bool {
        if status >= 100 && status < 600 && expectClasses & (1 << UInt8(status / 100)) != 0 { return true }
        return expectCodes.contains(status)
    }
}

/// `"outlierDetection"` (Envoy's name): consecutive failures from an endpoint (a failed or
/// timed-out connect, a connection reset before a response, a 5xx answer) eject it for
/// `baseEjectionTimeMs`, doubled at each ejection that follows its return without a success in
/// between, up to `maxEjectionTimeMs`.
public struct OutlierDetection: Sendable, Equatable {
    /// 0 turns passive ejection off.
    public var consecutiveFailures = 5
    public var baseEjectionTimeMs = 10_000
    public var maxEjectionTimeMs = 300_000
    /// Whether a 5xx answer counts as a failure (Envoy's consecutive_5xx). Off by default: only
    /// gateway failures count (connect failures, resets, timeouts), so an endpoint that answers
    /// 503 or 429 while throttled is not taken out of its pool for it (Envoy's
    /// consecutive_gateway_failure).
    public var count5xx = false
    /// The share of a pool that may be ejected at once (Envoy's max_ejection_percent); one
    /// endpoint may always be. With two endpoints killed in turn, the second was ejected while
    /// the first still was, and the pool answered 503 though one endpoint was up.
    public var maxEjectionPercent = 50

    public init() {}

    public static let off: OutlierDetection = {
        var o = OutlierDetection()
        o.consecutiveFailures = 0
        return o
    }()

    public var enabled: Bool { consecutiveFailures > 0 }

    /// The ejection time for the `level`th ejection in a row (1 = first).
    public func ejectionMs(level: Int) -> Int {
        var ms = baseEjectionTimeMs
        var n = 1
        while n < level && ms < maxEjectionTimeMs {
            ms *= 2
            n += 1
        }
        return min(ms, maxEjectionTimeMs)
    }
}

/// `"retries"`: what is tried again on another endpoint, how often, and the budget that keeps
/// a sick upstream from being hammered.
public struct RetryPolicy: Sendable, Equatable {
    /// Tries in all, the first included (so 2 = one retry).
    public var attempts: Int
    /// Retry when the connect failed (nothing was sent: always safe).
    public var onConnect: Bool
    /// Retry when the connection was reset or closed before any response byte (only for an
    /// idempotent method, or when none of the body was sent).
    public var onReset: Bool
    /// Response statuses retried (500...599), as a bit set over `status - 500`.
    public var onStatus: (UInt64, UInt64)
    /// Retries allowed as a share of requests, in percent; nil: no budget.
    public var budgetPercent: Int?
    /// Retries always allowed per budget window, whatever the share (so a quiet upstream can
    /// still retry).
    public var minRetries: Int

    /// Without a `"retries"` section: a failed connect is tried on the next endpoint, as many
    /// times as the pool has endpoints (up to 8), with no budget: nothing was sent, so it is
    /// always safe and costs the upstream nothing.
    public static let connectOnly = RetryPolicy(attempts: 8, onConnect: true, onReset: false, onStatus: (0, 0),
                                                budgetPercent: nil, minRetries: 0)

    public init(attempts: Int, onConnect: Bool, onReset: Bool, onStatus: (UInt64, UInt64), budgetPercent: Int?,
                minRetries: Int) {
        self.attempts = attempts
        self.onConnect = onConnect
        self.onReset = onReset
        self.onStatus = onStatus
        self.budgetPercent = budgetPercent
        self.minRetries = minRetries
    }

    public func retries(status: Int) -> Bool {
        guard status >= 500 && status < 628 else { return false }
        let bit = status - 500
        return bit < 64 ? onStatus.0 & (1 << UInt64(bit)) != 0 : onStatus.1 & (1 << UInt64(bit - 64)) != 0
    }

    public mutating func retry(status: Int) {
        guard status >= 500 && status < 600 else { return }
        let bit = status - 500
        if bit < 64 { onStatus.0 |= 1 << UInt64(bit) } else { onStatus.1 |= 1 << UInt64(bit - 64) }
    }

    public static func == (a: RetryPolicy, b: RetryPolicy) -> Bool {
        a.attempts == b.attempts && a.onConnect == b.onConnect && a.onReset == b.onReset
            && a.onStatus.0 == b.onStatus.0 && a.onStatus.1 == b.onStatus.1
            && a.budgetPercent == b.budgetPercent && a.minRetries == b.minRetries
    }
}

/// Everything above for one upstream.
public struct UpstreamPolicy: Sendable, Equatable {
    /// The check for a plain pool, and the default for both colors of a blue/green upstream.
    public var healthCheck: HealthCheck?
    /// A color's own check (blue, green), overriding `healthCheck`.
    public var colorHealthChecks: [HealthCheck?] = [nil, nil]
    /// When every endpoint of the pool is unhealthy or ejected, send to all of them anyway
    /// instead of answering 503.
    public var failOpen = false
    public var outlierDetection = OutlierDetection()
    public var retries = RetryPolicy.connectOnly
    /// Exchanges in progress per endpoint (0: unlimited), and requests that may wait for one
    /// when every endpoint is at its limit.
    public var maxConnections = 0
    public var maxPending = 0
    /// /readyz answers 503 while this upstream serves a route and has no healthy endpoint.
    public var affectsReadiness = true

    public init() {}

    /// The health check of a pool (`color` nil for a plain upstream).
    public func healthCheck(_ color: Color?) -> HealthCheck? {
        if let color, let own = colorHealthChecks[Int(color.rawValue)] { return own }
        return healthCheck
    }
}
