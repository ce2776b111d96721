// The admin listener (loopback by default): /metrics in Prometheus text format, /healthz and
// /readyz. Served by one background thread with blocking sockets, off the data path.
import Foundation
import Glibc
import Proxy
import Reactor
import Routing

public final class AdminServer: @unchecked Sendable {
    private let server: ProxyServer
    private let registry: EndpointRegistry
    private let listenFd: Int32
    public let address: SocketAddress
    private let ready: @Sendable () -> Bool

    /// Binds now (so a bad address is a start-up error); serves after `start()`.
    public init(address: SocketAddress, server: ProxyServer, registry: EndpointRegistry,
                ready: @escaping @Sendable () -> Bool = { true }) throws(SystemError) {
        self.server = server
        self.registry = registry
        self.ready = ready
        let fd = try Sys.blockingListener(address, backlog: 64)
        listenFd = fd
        self.address = Sys.localAddress(fd) ?? address
    }

    public func start() {
        let t = Thread { [self] in self.acceptLoop() }
        t.name = "switchyard-admin"
        t.start()
    }

    private func acceptLoop() {
        while let c = Sys.acceptBlocking(listenFd) {
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            serve(c)
            Glibc.close(c)
        }
    }

    private func serve(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 8192)
        var used = 0
        while used < buf.count {
            let n = buf.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + used, $0.count - used, 0) }
            if n <= 0 { return }
            used += n
            if buf[0..<used].firstRange(of: [13, 10, 13, 10]) != nil || buf[0..<used].firstRange(of: [10, 10]) != nil { break }
        }
        let line = String(decoding: buf[0..<used].prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count == 3 else { return respond(fd, 400, "text/plain", "bad request\n") }
        let path = parts[1].split(separator: "?").first.map(String.init) ?? "/"
        guard parts[0] == "GET" || parts[0] == "HEAD" else { return respond(fd, 405, "text/plain", "GET only\n") }
        switch path {
        case "/metrics": respond(fd, 200, "text/plain; version=0.0.4", metrics())
        case "/healthz": respond(fd, 200, "text/plain", "ok\n")
        case "/readyz":
            if ready() { respond(fd, 200, "text/plain", "ready\n") } else { respond(fd, 503, "text/plain", "draining\n") }
        default: respond(fd, 404, "text/plain", "not found: /metrics, /healthz, /readyz\n")
        }
    }

    private func respond(_ fd: Int32, _ status: Int, _ type: String, _ body: String) {
        let reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 503 ? "Service Unavailable" : "Bad Request"
        let bytes = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Prometheus exposition of every counter.
    func metrics() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let counters: [(Counter, String, String)] = [
            (.connectionsAccepted, "switchyard_connections_accepted_total", "Client connections accepted."),
            (.connectionsRejected, "switchyard_connections_rejected_total", "Client connections refused at maxConnections or while draining."),
            (.requests, "switchyard_requests_total", "Requests whose head was parsed."),
            (.noRoute, "switchyard_no_route_total", "Requests no route matched (404)."),
            (.upstreamConnects, "switchyard_upstream_connects_total", "Connections opened to endpoints."),
            (.upstreamConnectFailures, "switchyard_upstream_connect_failures_total", "Failed or timed-out connects."),
            (.upstreamRetries, "switchyard_upstream_retries_total", "Requests retried on another endpoint."),
            (.upstreamTimeouts, "switchyard_upstream_timeouts_total", "Upstream response timeouts."),
            (.clientTimeouts, "switchyard_client_timeouts_total", "Client head or body timeouts (408)."),
            (.mirrorsSent, "switchyard_mirror_sent_total", "Shadow copies sent."),
            (.mirrorsCompleted, "switchyard_mirror_completed_total", "Shadow copies answered."),
            (.mirrorsFailed, "switchyard_mirror_failed_total", "Shadow copies that failed or timed out."),
            (.mirrorsDropped, "switchyard_mirror_dropped_total", "Shadow copies dropped at maxInFlight or maxBufferBytes."),
            (.mirrorsSkippedBody, "switchyard_mirror_skipped_body_total", "Shadow copies skipped: body over maxBodyBytes."),
        ]
        for (c, name, help) in counters {
            family(name, "counter", help)
            out += "\(name) \(server.total(c))\n"
        }
        family("switchyard_responses_total", "counter", "Responses by status class.")
        for (c, cls) in [(Counter.responses2xx, "2xx"), (.responses3xx, "3xx"), (.responses4xx, "4xx"), (.responses5xx, "5xx")] {
            out += "switchyard_responses_total{class=\"\(cls)\"} \(server.total(c))\n"
        }
        family("switchyard_active_client_connections", "gauge", "Open client connections.")
        out += "switchyard_active_client_connections \(server.total(.activeClients))\n"
        family("switchyard_worker_connections_accepted_total", "counter", "Client connections accepted, by worker.")
        for (i, w) in server.stats.enumerated() {
            out += "switchyard_worker_connections_accepted_total{worker=\"\(i)\"} \(w.load(.connectionsAccepted))\n"
        }
        family("switchyard_worker_active_client_connections", "gauge", "Open client connections, by worker.")
        for (i, w) in server.stats.enumerated() {
            out += "switchyard_worker_active_client_connections{worker=\"\(i)\"} \(w.load(.activeClients))\n"
        }
        family("switchyard_active_upstream_connections", "gauge", "Open upstream connections.")
        out += "switchyard_active_upstream_connections \(server.total(.activeUpstreams))\n"
        family("switchyard_route_requests_total", "counter", "Requests routed, by route and variant.")
        for r in server.counters.allRequests() {
            out += "switchyard_route_requests_total{route=\"\(escape(r.route))\",variant=\"\(escape(r.variant ?? ""))\"} \(r.count)\n"
        }
        family("switchyard_endpoint_in_flight", "gauge", "Exchanges in progress, by endpoint.")
        for id in 0..<registry.count {
            guard let a = registry.address(for: id) else { continue }
            out += "switchyard_endpoint_in_flight{endpoint=\"\(escape(a))\"} \(server.counters.inFlight(endpoint: id))\n"
        }
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
