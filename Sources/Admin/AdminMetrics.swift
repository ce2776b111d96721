// The /metrics answer: every counter of the proxy in Prometheus text format (version 0.0.4).
// Sections in the order written: process-wide counters, outcomes by route/variant/upstream,
// latency histograms, endpoints, shadow copies, the rollout state, logs.
import Config
import Proxy
import Rollouts
import Routing
import Runtime

struct AdminMetrics {
    let server: ProxyServer
    let registry: EndpointRegistry
    var reloads: ReloadCounts? = nil
    var version = ""
    var rollouts: RolloutBoard? = nil
    var guards: GuardBoard? = nil
    var credentials: CredentialRefresher? = nil
    var fleet: (any SharedStateStore)? = nil
    var hooks: Hooks? = nil

    /// Prometheus exposition of every counter.
    func text() -> String {
        var w = PrometheusText()
        totals(&w)
        let report = MetricsReport(server.metrics)
        outcomes(&w, report)
        endpoints(&w)
        mirrors(&w, report)
        shadow(&w)
        experiments(&w)
        rollout(&w)
        fleetState(&w)
        hookDeliveries(&w)
        // Health, ejection, retries and limits (HealthMetrics.swift).
        return w.text + HealthMetrics(server: server, registry: registry).text()
    }

    /// Release events posted to the config's hooks, by event and result.
    private func hookDeliveries(_ w: inout PrometheusText) {
        guard let hooks else { return }
        var rows: [(labels: String, value: UInt64)] = []
        for (event, results) in hooks.snapshot.byEvent.sorted(by: { $0.key < $1.key }) {
            for (result, n) in results.sorted(by: { $0.key < $1.key }) {
                rows.append(("event=\"\(SeriesTable.escape(event))\",result=\"\(result)\"", n))
            }
        }
        w.family("switchyard_hook_deliveries_total", .counter,
                 "Release events posted to hooks: delivered, retried (one per failed try), failed (gave up), dropped (queue full).",
                 rows)
    }

    /// Fleet mode: whether etcd answers (since when not), the revision applied here.
    private func fleetState(_ w: inout PrometheusText) {
        guard let fleet else { return }
        let r = fleet.report(listingInstances: false)
        w.family("switchyard_fleet_store_up", .gauge, "1 while the fleet's etcd answers (the watch is open), else 0.", [("", r.storeUp ? 1 : 0)])
        w.family("switchyard_fleet_store_unreachable_since_timestamp_seconds", .gauge,
                 "When etcd stopped answering (Unix time); 0 while it answers.", [("", UInt64(max(0, (r.unreachableSince ?? 0).rounded(.down))))])
        w.family("switchyard_fleet_applied_revision", .gauge, "The newest etcd revision this instance has applied.",
                 [("", UInt64(max(0, r.appliedRevision)))])
        w.family("switchyard_fleet_state_revision", .gauge, "The revision of the newest change to the shared state seen here.",
                 [("", UInt64(max(0, r.stateRevision)))])
    }

    private func totals(_ w: inout PrometheusText) {
        let counters: [(Counter, String, String)] = [
            (.connectionsAccepted, "switchyard_connections_accepted_total", "Client connections accepted."),
            (.connectionsRejected, "switchyard_connections_rejected_total", "Client connections refused at maxConnections or while draining."),
            (.acceptPauses, "switchyard_accept_pauses_total", "Times accepting rested (100 ms) for want of descriptors or memory."),
            (.requests, "switchyard_requests_received_total", "Requests whose head was parsed."),
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
            (.accessLogDropped, "switchyard_access_log_dropped_total", "Access-log lines dropped because the writer fell behind."),
            (.tlsHandshakes, "switchyard_tls_handshakes_total", "TLS handshakes completed with clients."),
            (.tlsResumed, "switchyard_tls_resumed_total", "Client TLS handshakes that resumed a session."),
            (.tlsHandshakeFailures, "switchyard_tls_handshake_failures_total", "Client TLS handshakes that failed."),
            (.tlsClosedBeforeHandshake, "switchyard_tls_closed_before_handshake_total", "Clients that closed before their TLS handshake completed (not failures)."),
            (.tlsHandshakeTimeouts, "switchyard_tls_handshake_timeouts_total", "Client TLS handshakes not completed within handshakeMs."),
            (.upstreamTLSHandshakes, "switchyard_upstream_tls_handshakes_total", "TLS handshakes completed with endpoints."),
            (.upstreamTLSResumed, "switchyard_upstream_tls_resumed_total", "Endpoint TLS handshakes that resumed a session."),
            (.upstreamTLSFailures, "switchyard_upstream_tls_failures_total", "TLS sessions with endpoints that failed (verification included)."),
            (.signedRequests, "switchyard_signed_requests_total", "Requests signed for an upstream with auth.aws (SigV4)."),
            (.signedBodyTooLarge, "switchyard_signed_body_too_large_total", "Requests to a signed upstream refused 413: body over auth.aws.maxBodyBytes."),
        ]
        for (c, name, help) in counters { w.family(name, .counter, help, [("", server.total(c))]) }
        w.family("switchyard_responses_total", .counter, "Responses by status class.", [
            ("class=\"2xx\"", server.total(.responses2xx)), ("class=\"3xx\"", server.total(.responses3xx)),
            ("class=\"4xx\"", server.total(.responses4xx)), ("class=\"5xx\"", server.total(.responses5xx)),
        ])
        w.family("switchyard_active_client_connections", .gauge, "Open client connections.", [("", server.total(.activeClients))])
        w.family("switchyard_worker_connections_accepted_total", .counter, "Client connections accepted, by worker.",
                 server.stats.enumerated().map { ("worker=\"\($0.offset)\"", $0.element.load(.connectionsAccepted)) })
        w.family("switchyard_worker_active_client_connections", .gauge, "Open client connections, by worker.",
                 server.stats.enumerated().map { ("worker=\"\($0.offset)\"", $0.element.load(.activeClients)) })
        w.family("switchyard_active_upstream_connections", .gauge, "Open upstream connections.", [("", server.total(.activeUpstreams))])
    }

    private func outcomes(_ w: inout PrometheusText, _ r: MetricsReport) {
        w.family("switchyard_requests_total", .counter,
                 "Requests answered, by route, variant, upstream, status class and who answered (upstream or proxy).",
                 r.outcomes.map { ($0.labels, $0.count) })
        w.family("switchyard_route_requests_total", .counter, "Requests routed, by route and variant.",
                 r.routed.map { ("route=\"\(SeriesTable.escape($0.route))\",variant=\"\(SeriesTable.escape($0.variant))\"", $0.count) })
        w.family("switchyard_untrusted_steering_headers_total", .counter,
                 "Requests whose override or preview header was ignored: the source is not trusted (trustedSources or the secret header).",
                 r.untrustedSteering.map { ("route=\"\(SeriesTable.escape($0.route))\"", $0.count) })
        w.family("switchyard_request_duration_seconds", .histogram,
                 "Client request head received to last response byte sent, by route and variant.")
        for h in r.requestDuration { w.histogram("switchyard_request_duration_seconds", h.labels, buckets: h.buckets, sumNs: h.sumNs) }
        w.family("switchyard_upstream_response_seconds", .histogram,
                 "Request sent upstream to response head received, by upstream and color.")
        for h in r.upstreamResponse { w.histogram("switchyard_upstream_response_seconds", h.labels, buckets: h.buckets, sumNs: h.sumNs) }
    }

    private func endpoints(_ w: inout PrometheusText) {
        // Endpoints of the snapshot requests route on now: a removed endpoint's series goes
        // with it, so churning pools do not leave thousands of stale series behind.
        let rows = server.metrics.endpointRows(server.snapshot)
        w.family("switchyard_endpoint_in_flight", .gauge, "Exchanges in progress, by upstream, color and endpoint.",
                 rows.map { ($0.labels, server.metrics.total(\.inFlight, $0.seriesID)) })
        let pools = server.metrics.longLivedRows(server.snapshot)
        w.family("switchyard_upstream_tunnels", .gauge, "Open tunnels (after a 101), by upstream and the color they started on.",
                 pools.map { ($0.labels, $0.tunnels) })
        w.family("switchyard_upstream_streams", .gauge,
                 "Responses whose body is still being relayed, by upstream and the color they started on.",
                 pools.map { ($0.labels, $0.streams) })
    }

    private func mirrors(_ w: inout PrometheusText, _ r: MetricsReport) {
        w.family("switchyard_mirror_copies_total", .counter, "Shadow copies by route, shadow upstream and outcome.",
                 r.mirrors.map { ($0.labels, $0.count) })
    }

    private func rollout(_ w: inout PrometheusText) {
        let snapshot = server.snapshot
        w.family("switchyard_route_weight", .gauge, "Each variant's weight (a route without a split: variant default, 100).",
                 snapshot.routeWeights.map { ("route=\"\(SeriesTable.escape($0.route))\",variant=\"\(SeriesTable.escape($0.variant))\"", UInt64($0.weight)) })
        w.family("switchyard_live_color", .gauge, "1 for the live color of each blue/green upstream, 0 for the idle one.",
                 snapshot.liveColors.map { ("upstream=\"\(SeriesTable.escape($0.upstream))\",color=\"\($0.color)\"", UInt64($0.live)) })
        w.family("switchyard_snapshot_version", .gauge, "Version of the routing snapshot requests route on.", [("", snapshot.version)])
        rollouts?.write(&w)
        if let reloads {
            let v = reloads.values
            w.family("switchyard_config_reloads_total", .counter, "Config reloads (SIGHUP, ctl reload, watchConfig), applied or refused.",
                     [("result=\"applied\"", v.applied), ("result=\"refused\"", v.refused)])
        }
        credentials?.write(&w)
        if let guards {
            w.family("switchyard_guarded_reverts_total", .counter, "Guarded changes (--bake) reverted on a breach of their limits.",
                     [("", guards.revertCount)])
        }
        w.family("switchyard_build_info", .gauge, "Always 1; the version is a label.",
                 [("version=\"\(SeriesTable.escape(version.isEmpty ? "unknown" : version))\"", 1)])
    }
}
