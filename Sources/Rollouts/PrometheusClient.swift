// Rollout gates ask a Prometheus server (fleet mode) over its HTTP API `/api/v1/query`, summed
// over every instance, so the whole fleet judges a step on the same numbers. HTTP/1.0 over a
// blocking socket with timeouts, run off the state queue, in TLS for an https:// target
// (verified against the system store or the gate source's caFile, the name checked).
import Config
import Foundation
import Glibc
import Synchronization
import TLS

extension PrometheusQuery {
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
        var stream: any AnswerStream = PlainStream(fd: fd)
        if target.secure { stream = try TLSStream(fd: fd, target: target) }
        try stream.send(Array(request.utf8))
        var answer: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 1)
        defer { chunk.deallocate() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            let n = try stream.receive(chunk, timeout: timeout)
            if n == 0 { break }
            answer += chunk[0..<n]
            if answer.count > maxAnswerBytes { throw Failure(description: "answer over 4 MiB") }
            if Date() > deadline { throw Failure(description: "no complete answer within \(timeout)s") }
        }
        return answer
    }
}

/// One query's bytes on a blocking socket whose timeouts are set: sent whole, received until
/// the server's close (0).
private protocol AnswerStream {
    func send(_ bytes: [UInt8]) throws(PrometheusQuery.Failure)
    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(PrometheusQuery.Failure) -> Int
}

private struct PlainStream: AnswerStream {
    let fd: Int32

    func send(_ bytes: [UInt8]) throws(PrometheusQuery.Failure) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw PrometheusQuery.Failure(description: "send: errno \(errno)") }
            sent += n
        }
    }

    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(PrometheusQuery.Failure) -> Int {
        while true {
            let n = recv(fd, into.baseAddress!, into.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw PrometheusQuery.Failure(description: "no answer within \(timeout)s (errno \(errno))")
        }
    }
}

/// TLS over the blocking socket: a want-read or want-write is the socket's timeout.
private struct TLSStream: AnswerStream {
    let connection: TLSConnection
    let client: TLSClient
    let peer: String

    init(fd: Int32, target: PrometheusTarget) throws(PrometheusQuery.Failure) {
        peer = "\(target.host):\(target.port)"
        client = try Self.context(caFile: target.caFile, peer: peer)
        guard let c = client.connect(fd: fd, host: target.host, resume: nil) else {
            throw PrometheusQuery.Failure(description: "TLS to \(peer): cannot start a session")
        }
        connection = c
        switch c.handshake() {
        case .done: break
        case .wantRead, .wantWrite: throw PrometheusQuery.Failure(description: "TLS handshake with \(peer) timed out")
        case .failed(let reason): throw PrometheusQuery.Failure(description: "TLS handshake with \(peer) failed: \(reason)")
        }
    }

    /// One client context per CA file and version of it, made on first use and shared by later
    /// queries (each reading asks six questions; loading a CA store for each was work done six
    /// times). A CA file replaced under the same path (a rotation) is loaded again.
    private static let contexts = Mutex<[String: TLSClient]>([:])

    private static func context(caFile: String?, peer: String) throws(PrometheusQuery.Failure) -> TLSClient {
        var key = caFile ?? ""
        if let caFile {
            var st = stat()
            if stat(caFile, &st) == 0 { key += "\u{0}\(st.st_ino) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_size)" }
        }
        if let known = contexts.withLock({ $0[key] }) { return known }
        let made: TLSClient
        do {
            made = try TLSClient(TLSClientSettings(caFile: caFile))
        } catch {
            throw PrometheusQuery.Failure(description: "TLS to \(peer): \(error)")
        }
        contexts.withLock {
            if $0.count >= 16 { $0.removeAll() }   // rotations leave old versions behind
            $0[key] = made
        }
        return made
    }

    func send(_ bytes: [UInt8]) throws(PrometheusQuery.Failure) {
        var sent = 0
        while sent < bytes.count {
            let r = bytes.withUnsafeBytes { connection.write($0.baseAddress! + sent, $0.count - sent) }
            guard case .done(let n) = r, n > 0 else { throw PrometheusQuery.Failure(description: "TLS send to \(peer): \(r)") }
            sent += n
        }
    }

    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(PrometheusQuery.Failure) -> Int {
        switch connection.read(into.baseAddress!, into.count) {
        case .done(let n): return n
        case .closed: return 0
        case .wantRead, .wantWrite: throw PrometheusQuery.Failure(description: "no answer from \(peer) within \(timeout)s")
        case .failed(let reason): throw PrometheusQuery.Failure(description: "TLS read from \(peer): \(reason)")
        }
    }
}
