// The /metrics answer: every counter of the proxy in Prometheus text format (version 0.0.4).
import Foundation
import Proxy

struct AdminMetrics {
    let server: ProxyServer
    let registry: EndpointRegistry
    var reloads: ReloadCounters? = nil

    /// Prometheus exposition of every counter.
    func text() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let counters: [(Counter, String, String)] = [
            (.connectionsAccepted, "switchyard_connections_accepted_total", "Client connections accepted."),
            (.connectionsRejected, "switchyard_connections_rejected_total", "Client connections refused at maxConnections or while draining."),
            (.acceptPauses, "switchyard_accept_pauses_total", "Times accepting rested (100 ms) for want of descriptors or memory."),
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
            (.tlsHandshakes, "switchyard_tls_handshakes_total", "TLS handshakes completed with clients."),
            (.tlsResumed, "switchyard_tls_resumed_total", "Client TLS handshakes that resumed a session."),
            (.tlsHandshakeFailures, "switchyard_tls_handshake_failures_total", "Client TLS handshakes that failed."),
            (.tlsHandshakeTimeouts, "switchyard_tls_handshake_timeouts_total", "Client TLS handshakes not completed within handshakeMs."),
            (.upstreamTLSHandshakes, "switchyard_upstream_tls_handshakes_total", "TLS handshakes completed with endpoints."),
            (.upstreamTLSResumed, "switchyard_upstream_tls_resumed_total", "Endpoint TLS handshakes that resumed a session."),
            (.upstreamTLSFailures, "switchyard_upstream_tls_failures_total", "TLS sessions with endpoints that failed (verification included)."),
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
        // Endpoints of the snapshot requests route on now: a removed endpoint's series goes
        // with it, so churning pools do not leave thousands of stale series behind.
        for id in server.snapshot.endpointIDs {
            guard let a = registry.address(for: id) else { continue }
            out += "switchyard_endpoint_in_flight{endpoint=\"\(escape(a))\"} \(server.counters.inFlight(endpoint: id))\n"
        }
        out += HealthMetrics(server: server, registry: registry).text()
        if let reloads {
            family("switchyard_config_reloads_total", "counter", "Config reloads (reload, SIGHUP, watchConfig) by result.")
            out += "switchyard_config_reloads_total{result=\"applied\"} \(reloads.appliedCount)\n"
            out += "switchyard_config_reloads_total{result=\"refused\"} \(reloads.refusedCount)\n"
        }
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
