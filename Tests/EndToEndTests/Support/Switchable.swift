// An in-test upstream whose answers the test changes while it runs: the status of its
// /healthz (or a repeating pattern of them, one per check) and of every other request.
import Foundation
import TestSupport

final class Switchable: @unchecked Sendable {
    private let lock = NSLock()
    private var healthPattern: [Int] = [200]
    private var checks = 0
    private var requestStatus = 200
    private var served = 0

    /// Every check answers `status` from now on.
    func setHealth(_ status: Int) { setHealthPattern([status]) }

    /// Checks answer these statuses in turn, repeating.
    func setHealthPattern(_ statuses: [Int]) {
        lock.withLock {
            healthPattern = statuses
            checks = 0
        }
    }

    var status: Int {
        get { lock.withLock { requestStatus } }
        set { lock.withLock { requestStatus = newValue } }
    }

    /// Requests other than health checks answered so far.
    var servedCount: Int { lock.withLock { served } }

    func nextHealth() -> Int {
        lock.withLock {
            defer { checks += 1 }
            return healthPattern[checks % healthPattern.count]
        }
    }

    func nextStatus() -> Int {
        lock.withLock {
            served += 1
            return requestStatus
        }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

extension EndToEndTestCase {
    /// A server answering /healthz and every other GET as `state` says, naming itself in
    /// `X-Name`. Requests with a body are answered once the body is read, then the connection
    /// closes. On `port` when given (a server back where a stopped one listened).
    func startSwitchable(_ state: Switchable, name: String, port: UInt16 = 0) throws -> RawServer {
        try startServer(port: port) { conn, server in
            while let head = conn.readHead() {
                if head.hasPrefix("GET /healthz ") {
                    let s = state.nextHealth()
                    conn.send("HTTP/1.1 \(s) \(Switchable.reason(s))\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                }
                server.record(head)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if length > 0 {
                    var body = conn.takeBuffered()
                    while body.count < length {
                        var chunk = [UInt8](repeating: 0, count: 4096)
                        guard let n = try? chunk.withUnsafeMutableBytes({ try Sockets.receive(conn.fd, into: $0) }), n > 0 else { return }
                        body += chunk[0..<n]
                    }
                }
                let s = state.nextStatus()
                conn.send("HTTP/1.1 \(s) \(Switchable.reason(s))\r\nContent-Length: \(name.utf8.count)\r\nX-Name: \(name)\r\n"
                          + (length > 0 ? "Connection: close\r\n" : "") + "\r\n\(name)")
                if length > 0 { return }
            }
        }
    }

    /// A proxy config with a 127.0.0.1:0 listener, an admin listener, `upstreams` (name to
    /// the upstream object's JSON) and one route to the first upstream unless `routes` says.
    func policyConfig(upstreams: [(String, String)], routes: [String]? = nil, workers: Int = 1, connectMs: Int = 1000) -> String {
        let rs = routes ?? ["{ \"name\": \"default\", \"upstream\": \"\(upstreams[0].0)\" }"]
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": \(workers),
          "timeouts": { "connectMs": \(connectMs), "headerMs": 2000, "responseMs": 5000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": { \(upstreams.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ",\n")) },
          "routes": [ \(rs.joined(separator: ", ")) ],
          "admin": { "address": "127.0.0.1:0" }
        }
        """
    }

    /// The label set of an endpoint's health series.
    func endpointLabels(upstream: String = "app", color: String = "default", port: UInt16) -> String {
        "{upstream=\"\(upstream)\",color=\"\(color)\",endpoint=\"127.0.0.1:\(port)\"}"
    }
}
