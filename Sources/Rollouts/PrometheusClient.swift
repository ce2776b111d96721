// Rollout gates ask a Prometheus server (fleet mode) over its HTTP API `/api/v1/query`, summed
// over every instance, so the whole fleet judges a step on the same numbers. Asked with the
// control plane's client (Fetch: blocking, with timeouts, TLS for an https:// target verified
// against the system store or the gate source's caFile), run off the state queue.
import Config
import Fetch
import Foundation
import Routing

extension PrometheusQuery {
    /// Runs `expression` and returns the vector's samples. `bearerToken` (checked by
    /// `tokenProblem`) goes in an `Authorization: Bearer` header.
    public static func run(_ expression: String, at target: Target, bearerToken: String? = nil,
                           timeout: Double = 2) throws(Failure) -> [Sample] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? expression
        var headers: [(name: String, value: String)] = [("Accept", "application/json"), ("User-Agent", "switchyard-rollout")]
        if let bearerToken {
            if let problem = tokenProblem(Array(bearerToken.utf8)) { throw Failure(description: "bearer token: \(problem)") }
            headers.append(("Authorization", "Bearer \(bearerToken)"))
        }
        let url = HTTPURL(secure: target.secure, host: target.host, port: target.port, path: "")
        let request = FetchRequest(path: "\(target.prefix)/api/v1/query?query=\(encoded)", headers: headers)
        let answer: [UInt8]
        do throws(FetchError) {
            answer = try Fetch.answer(request, to: url, caFile: target.caFile, timeout: timeout, maxBytes: maxAnswerBytes)
        } catch {
            throw Failure(description: error.description)
        }
        return try samples(answer: answer)
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

    static func reading(route: String, plan: RolloutPlan, at target: Target, bearerToken: String? = nil) throws(Failure) -> RolloutReading {
        let selector = plan.prometheusSelector ?? defaultSelector
        return RolloutReading(variant: try counts(route: route, variant: plan.variant, at: target, selector: selector, bearerToken: bearerToken),
                              baseline: try counts(route: route, variant: plan.baseline, at: target, selector: selector, bearerToken: bearerToken))
    }

    /// The largest answer read: a query answer is a few series.
    static let maxAnswerBytes = 4 << 20
}
