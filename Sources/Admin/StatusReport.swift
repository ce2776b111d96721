// The status page's data (/status and /status.json render it): every route's variants with
// their weights and last minute, its rollout, shadows and experiment; every upstream's
// endpoints; guards and recent events. Built from the rows /metrics and the `show` commands
// use (MetricsReport, ShadowReport, ExperimentReport, HealthReport, RolloutStatus), on the
// admin loop from the counters the workers already keep.
import Config
import Dispatch
import Foundation
import Proxy
import Rollouts
import Routing
import Runtime
import Synchronization

struct StatusReport {
    struct Variant {
        var name: String
        var upstream: String
        var weight: Int
        /// Its weight's share of the route's total (0...1).
        var configuredShare: Double
        /// Its share of the route's requests over the window; nil with none.
        var observedShare: Double?
        /// What happened over the window.
        var window: VariantCounts
        var ratePerSecond: Double?
        var p99Ms: Double?
        /// Requests per sampling interval over the window, oldest first.
        var series: [UInt64]
    }

    struct Route {
        var name: String
        var variants: [Variant]
        var rollout: RolloutStatus?
        var shadows: [ShadowReport.Row]
        var experiment: ExperimentReport?
    }

    struct Endpoint {
        var color: String
        var address: String
        var health: String
        var ejections: UInt64
        var inFlight: UInt64
    }

    struct Upstream {
        var name: String
        /// The live color of a blue/green upstream.
        var live: String?
        var endpoints: [Endpoint]
    }

    /// What lives on the state queue, copied there.
    struct Control: Sendable {
        var rollouts: [String: RolloutStatus]
        var guards: ControlValue
        /// Commits, reloads and rollout events, newest first.
        var events: [RolloutEvent]
    }

    /// Unix seconds.
    var now: Double
    var version: UInt64
    /// The seconds "last minute" covers (less just after start).
    var windowSeconds: Double
    var routes: [Route] = []
    var upstreams: [Upstream] = []
    var mismatches: [(route: String, shadow: String, m: ShadowMismatch)] = []
    var control: Control?
    /// Release events posted to hooks: by event, deliveries by result.
    var hooks: [String: [String: UInt64]] = [:]
    /// The state queue did not answer in time: `control` is the previous copy.
    var controlStale = false
}

/// Gathers a StatusReport on the admin loop.
final class StatusSource {
    let server: ProxyServer
    let registry: EndpointRegistry
    let history = StatusHistory()
    private let control: StatusControlSource?
    private let hooks: Hooks?

    init(server: ProxyServer, registry: EndpointRegistry, guards: GuardBoard?) {
        self.server = server
        self.registry = registry
        control = guards.map(StatusControlSource.init)
        hooks = guards?.state.hooks
    }

    /// Every variant's counters now.
    func sample(atMs: UInt64) -> StatusHistory.Sample {
        let metrics = MetricsReport(server.metrics)
        var counts: [String: [String: VariantCounts]] = [:]
        for w in server.snapshot.routeWeights {
            counts[w.route, default: [:]][w.variant] = metrics.variantCounts(route: w.route, variant: w.variant)
        }
        return StatusHistory.Sample(atMs: atMs, counts: counts)
    }

    func report(nowMs: UInt64) -> StatusReport {
        let snapshot = server.snapshot
        // The sampler's timer keeps the history; a look only reads it (a look that added itself
        // made the sparkline's last interval end where it began).
        let current = sample(atMs: nowMs)
        let base = history.baseline ?? current
        let seconds = Double(nowMs - min(base.atMs, nowMs)) / 1000
        var r = StatusReport(now: Date().timeIntervalSince1970, version: snapshot.version, windowSeconds: seconds)
        (r.control, r.controlStale) = control?.read() ?? (nil, false)
        r.hooks = hooks?.snapshot.byEvent ?? [:]
        let shadow = ShadowReport(server.metrics)
        r.mismatches = shadow.mismatches.reversed()
        let experiments = snapshot.experimentRoutes.isEmpty ? []
            : ExperimentReport.all(snapshot, registry: server.experiments, looks: control?.looks ?? ExperimentLooks())
        for route in snapshot.routes {
            var variants: [(name: String, upstream: Int, weight: Int)]
            switch route.target {
            case .upstream(let u): variants = [(MetricSeries.defaultVariant, u, 100)]
            case .split(let s): variants = s.variants.map { ($0.name, $0.upstream, $0.weight) }
            }
            let totalWeight = variants.reduce(0) { $0 + $1.weight }
            let windows = variants.map { v in
                (current.counts[route.name]?[v.name] ?? VariantCounts()).since(base.counts[route.name]?[v.name] ?? VariantCounts())
            }
            let routeRequests = windows.reduce(UInt64(0)) { $0 &+ $1.requests }
            var row = StatusReport.Route(name: route.name, variants: [], rollout: r.control?.rollouts[route.name],
                                         shadows: shadow.rows.filter { $0.route == route.name },
                                         experiment: experiments.first { $0.route == route.name })
            for (v, w) in zip(variants, windows) {
                let p99 = w.quantile(0.99, bounds: RolloutLatency.boundsSeconds).map { $0 * 1000 }
                row.variants.append(StatusReport.Variant(
                    name: v.name, upstream: v.upstream < snapshot.upstreams.count ? snapshot.upstreams[v.upstream].name : "?",
                    weight: v.weight, configuredShare: totalWeight > 0 ? Double(v.weight) / Double(totalWeight) : 0,
                    observedShare: routeRequests > 0 ? Double(w.requests) / Double(routeRequests) : nil,
                    window: w, ratePerSecond: seconds > 0 ? Double(w.requests) / seconds : nil, p99Ms: p99,
                    series: history.requestSeries(route: route.name, variant: v.name, now: current)))
            }
            r.routes.append(row)
        }
        r.upstreams = upstreams(snapshot)
        return r
    }

    private func upstreams(_ snapshot: Snapshot) -> [StatusReport.Upstream] {
        var byName: [String: Int] = [:]
        var list: [StatusReport.Upstream] = []
        for u in snapshot.upstreams {
            var live: String?
            if case .blueGreen(let bg) = u.kind { live = bg.live.name }
            byName[u.name] = list.count
            list.append(StatusReport.Upstream(name: u.name, live: live, endpoints: []))
        }
        let inFlight = server.metrics.inFlightByEndpoint()
        for e in HealthReport.rows(snapshot, registry: registry) {
            guard let i = byName[e.upstream] else { continue }
            list[i].endpoints.append(StatusReport.Endpoint(
                color: e.color, address: e.address, health: HealthReport.health(server, endpoint: e.id),
                ejections: server.health.ejections(endpoint: e.id), inFlight: inFlight[e.id] ?? 0))
        }
        return list
    }
}

/// Copies the rollouts, guards and recent events on the state queue, waiting at most 200 ms: a
/// long reload holding the queue leaves the page with the previous copy, not the admin loop
/// (and /healthz with it) stuck.
final class StatusControlSource: Sendable {
    private let guards: GuardBoard
    private let latest = Mutex<StatusReport.Control?>(nil)

    init(guards: GuardBoard) { self.guards = guards }

    /// The verdicts' running looks, the ones `show experiment` keeps: the page and the command
    /// name the same winner.
    var looks: ExperimentLooks { guards.state.experimentLooks }

    func read() -> (StatusReport.Control?, stale: Bool) {
        let done = DispatchSemaphore(value: 0)
        guards.state.queue.async { [self] in
            let state = guards.state
            var events = state.recentEvents.events
            for (route, s) in state.overrides.rollouts {
                events += s.history.filter { !["gate", "wait"].contains($0.kind) }.map { RolloutEvent(at: $0.at, kind: "rollout \($0.kind)", detail: "\(route): \($0.detail)") }
            }
            events.sort { $0.at > $1.at }
            let control = StatusReport.Control(rollouts: state.overrides.rollouts, guards: guards.guardsValue,
                                               events: Array(events.prefix(RecentEvents.capacity)))
            latest.withLock { $0 = control }
            done.signal()
        }
        let fresh = done.wait(timeout: .now() + .milliseconds(200)) == .success
        return (latest.withLock { $0 }, !fresh)
    }
}
