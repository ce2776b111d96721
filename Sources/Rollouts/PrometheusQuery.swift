// Rollout gates read from a Prometheus server (fleet mode): instant queries over its HTTP API
// `/api/v1/query`, summed over every instance, so the whole fleet judges a step on the same
// numbers. Plain HTTP/1.0 over a blocking socket with timeouts, run off the state queue.
import Config
import Foundation
import Glibc
import Runtime

public enum PrometheusQuery {
    /// `http://HOST:PORT[/PREFIX]` (Config/PrometheusTarget.swift: the config validates it).
    public typealias Target = PrometheusTarget

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// Prometheus answered, but not with counts (NaN, infinite, negative, fractional or
        /// absurdly large values, or not a query answer): the reading is invalid, the step holds.
        public var invalidReading = false
    }

    public static let defaultSelector = PrometheusRules.defaultSelector
    public static let defaultMaxInvalidReadings = PrometheusRules.defaultMaxInvalidReadings
    public static let maxInvalidReadingsRange = PrometheusRules.maxInvalidReadingsRange
    /// Counts above 2^53 are not exact as a Double, and no proxy ever answers that many
    /// requests: a larger value is a bogus series, not a count.
    public static let largestCount = 9_007_199_254_740_992.0

    /// One sample of an instant vector: its labels and value.
    public struct Sample {
        public var labels: [String: String]
        public var value: Double
    }

    /// Runs `expression` and returns the vector's samples. `bearerToken` (checked by
    /// `tokenProblem`) goes in an `Authorization: Bearer` header.
    public static func run(_ expression: String, at target: Target, bearerToken: String? = nil,
                           timeout: Double = 2) throws(Failure) -> [Sample] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? expression
        var authorization = ""
        if let bearerToken {
            if let problem = tokenProblem(Array(bearerToken.utf8)) { throw Failure(description: "bearer token: \(problem)") }
            authorization = "Authorization: Bearer \(bearerToken)\r\n"
        }
        let request = "GET \(target.prefix)/api/v1/query?query=\(encoded) HTTP/1.0\r\nHost: \(target.host):\(target.port)\r\n"
            + authorization + "Accept: application/json\r\nUser-Agent: switchyard-rollout\r\n\r\n"
        return try samples(answer: try exchange(request, target, timeout: timeout))
    }

    /// The samples of one `/api/v1/query` answer (head and body, as read off the socket). A
    /// value that is not a number is kept as NaN so that `counts` rejects the reading.
    static func samples(answer response: [UInt8]) throws(Failure) -> [Sample] {
        guard let headEnd = response.firstRange(of: Array("\r\n\r\n".utf8)) else { throw Failure(description: "no HTTP head in the answer") }
        let statusLine = String(decoding: response[..<(response.firstIndex(of: 13) ?? headEnd.lowerBound)], as: UTF8.self)
        let body = Data(response[headEnd.upperBound...])
        guard statusLine.split(separator: " ").dropFirst().first == "200" else {
            throw Failure(description: "answered \"\(statusLine)\"")
        }
        guard let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              json["status"] as? String == "success", let data = json["data"] as? [String: Any],
              let result = data["result"] as? [[String: Any]] else {
            throw Failure(description: "not a successful /api/v1/query answer", invalidReading: true)
        }
        return result.map { element in
            var value = Double.nan
            if let pair = element["value"] as? [Any], pair.count == 2, let text = pair[1] as? String, let number = Double(text) {
                value = number
            }
            return Sample(labels: element["metric"] as? [String: String] ?? [:], value: value)
        }
    }

    /// The counters of one variant of `route`, summed over every instance of the proxy that
    /// Prometheus scrapes (the series `selector` matches).
    static func counts(route: String, variant: String, at target: Target, selector: String = defaultSelector,
                       bearerToken: String? = nil) throws(Failure) -> VariantCounts {
        if let problem = selectorProblem(selector) { throw Failure(description: "selector: \(problem)") }
        let labels = "\(selector),route=\"\(escape(route))\",variant=\"\(escape(variant))\""
        let requests = try run("sum(switchyard_requests_total{\(labels)})", at: target, bearerToken: bearerToken)
        let errors = try run("sum(switchyard_requests_total{\(labels),code=\"5xx\"})", at: target, bearerToken: bearerToken)
        let cumulative = try run("sum by (le) (switchyard_request_duration_seconds_bucket{\(labels)})", at: target, bearerToken: bearerToken)
        return try counts(requests: requests, errors: errors, cumulative: cumulative)
    }

    /// One variant's counters from the three answers; pure, so the fuzzer drives it. Every value
    /// must be a whole, finite, non-negative count up to 2^53, or the reading is invalid.
    static func counts(requests: [Sample], errors: [Sample], cumulative: [Sample]) throws(Failure) -> VariantCounts {
        func count(_ x: Double, _ what: String) throws(Failure) -> UInt64 {
            guard x.isFinite, x >= 0, x <= largestCount, let n = UInt64(exactly: x) else {
                throw Failure(description: "\(what) \(x) is not a count (a whole number from 0 to 2^53)", invalidReading: true)
            }
            return n
        }
        func single(_ samples: [Sample], _ what: String) throws(Failure) -> UInt64 {
            guard samples.count <= 1 else {
                throw Failure(description: "\(what): \(samples.count) series where sum() gives one", invalidReading: true)
            }
            return try samples.first.map { (s) throws(Failure) in try count(s.value, what) } ?? 0
        }
        let requestCount = try single(requests, "requests")
        let errorCount = try single(errors, "5xx responses")
        guard errorCount <= requestCount else {
            throw Failure(description: "\(errorCount) 5xx responses of only \(requestCount) requests", invalidReading: true)
        }
        var byBound: [Double: UInt64] = [:]
        for s in cumulative {
            guard let le = s.labels["le"] else { continue }
            let n = try count(s.value, "bucket le=\"\(le)\"")
            guard let bound = le == "+Inf" ? Double.infinity : Double(le), !bound.isNaN else { continue }
            guard byBound.updateValue(n, forKey: bound) == nil else {
                throw Failure(description: "bucket le=\"\(le)\" answered twice", invalidReading: true)
            }
        }
        var buckets: [UInt64] = []
        var below: UInt64 = 0
        for bound in RolloutLatency.boundsSeconds + [.infinity] {
            // Cumulative buckets never go down; a missing bound holds what the one below held.
            let upTo = max(byBound[bound] ?? below, below)
            buckets.append(upTo - below)
            below = upTo
        }
        return VariantCounts(requests: requestCount, errors: errorCount, buckets: buckets)
    }

    static func reading(route: String, plan: RolloutPlan, at target: Target, bearerToken: String? = nil) throws(Failure) -> RolloutReading {
        let selector = plan.prometheusSelector ?? defaultSelector
        return RolloutReading(variant: try counts(route: route, variant: plan.variant, at: target, selector: selector, bearerToken: bearerToken),
                              baseline: try counts(route: route, variant: plan.baseline, at: target, selector: selector, bearerToken: bearerToken))
    }

    public static func selectorProblem(_ selector: String) -> String? { PrometheusRules.selectorProblem(selector) }
    public static func tokenProblem(_ token: [UInt8]) -> String? { PrometheusRules.tokenProblem(token) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    private static func exchange(_ request: String, _ target: Target, timeout: Double) throws(Failure) -> [UInt8] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(target.host, String(target.port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(target.host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "cannot connect to \(target.host):\(target.port): errno \(errno)")
        }
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR && Date() < deadline { continue }
                throw Failure(description: "no answer within \(timeout)s (errno \(errno))")
            }
            answer += chunk[0..<n]
            if answer.count > 4 << 20 { throw Failure(description: "answer over 4 MiB") }
            if Date() > deadline { throw Failure(description: "no complete answer within \(timeout)s") }
        }
        return answer
    }
}
