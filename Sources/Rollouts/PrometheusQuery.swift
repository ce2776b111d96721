// Rollout gates read from a Prometheus server (fleet mode): what its `/api/v1/query` answers
// mean. Every value must be a count, or the reading is invalid (pure, so the fuzzer drives it);
// PrometheusClient.swift asks the questions.
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

    public static func selectorProblem(_ selector: String) -> String? { PrometheusRules.selectorProblem(selector) }
    public static func tokenProblem(_ token: [UInt8]) -> String? { PrometheusRules.tokenProblem(token) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
