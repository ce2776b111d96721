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
    }

    /// One sample of an instant vector: its labels and value.
    public struct Sample {
        public var labels: [String: String]
        public var value: Double
    }

    /// Runs `expression` and returns the vector's samples.
    public static func run(_ expression: String, at target: Target, timeout: Double = 2) throws(Failure) -> [Sample] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? expression
        let request = "GET \(target.prefix)/api/v1/query?query=\(encoded) HTTP/1.0\r\nHost: \(target.host):\(target.port)\r\n"
            + "Accept: application/json\r\nUser-Agent: switchyard-rollout\r\n\r\n"
        let response = try exchange(request, target, timeout: timeout)
        guard let headEnd = response.firstRange(of: Array("\r\n\r\n".utf8)) else { throw Failure(description: "no HTTP head in the answer") }
        let statusLine = String(decoding: response[..<(response.firstIndex(of: 13) ?? headEnd.lowerBound)], as: UTF8.self)
        let body = Data(response[headEnd.upperBound...])
        guard statusLine.split(separator: " ").dropFirst().first == "200" else {
            throw Failure(description: "answered \"\(statusLine)\"")
        }
        guard let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              json["status"] as? String == "success", let data = json["data"] as? [String: Any],
              let result = data["result"] as? [[String: Any]] else {
            throw Failure(description: "not a successful /api/v1/query answer")
        }
        return result.compactMap { element in
            guard let pair = element["value"] as? [Any], pair.count == 2, let text = pair[1] as? String,
                  let value = Double(text) else { return nil }
            return Sample(labels: element["metric"] as? [String: String] ?? [:], value: value)
        }
    }

    /// The counters of one variant of `route`, summed over every instance Prometheus scrapes.
    static func counts(route: String, variant: String, at target: Target) throws(Failure) -> VariantCounts {
        let labels = "route=\"\(escape(route))\",variant=\"\(escape(variant))\""
        let requests = try run("sum(switchyard_requests_total{\(labels)})", at: target).first?.value ?? 0
        let errors = try run("sum(switchyard_requests_total{\(labels),code=\"5xx\"})", at: target).first?.value ?? 0
        let cumulative = try run("sum by (le) (switchyard_request_duration_seconds_bucket{\(labels)})", at: target)
        var byBound: [Double: Double] = [:]
        for s in cumulative {
            guard let le = s.labels["le"] else { continue }
            byBound[le == "+Inf" ? .infinity : (Double(le) ?? .nan)] = s.value
        }
        var buckets: [UInt64] = []
        var below = 0.0
        for bound in RolloutLatency.boundsSeconds + [.infinity] {
            let upTo = max(byBound[bound] ?? below, below)
            buckets.append(UInt64(upTo - below))
            below = upTo
        }
        return VariantCounts(requests: UInt64(max(requests, 0)), errors: UInt64(max(errors, 0)), buckets: buckets)
    }

    static func reading(route: String, plan: RolloutPlan, at target: Target) throws(Failure) -> RolloutReading {
        RolloutReading(variant: try counts(route: route, variant: plan.variant, at: target),
                       baseline: try counts(route: route, variant: plan.baseline, at: target))
    }

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
