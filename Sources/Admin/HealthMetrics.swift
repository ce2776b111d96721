// The /metrics section of health checks, ejection, retries and limits (per endpoint labelled
// {upstream,color,endpoint}; per upstream {upstream}), rendered from HealthReport's rows.
import Config
import Proxy
import Routing
import Runtime

struct HealthMetrics {
    let server: ProxyServer
    let registry: EndpointRegistry

    /// The section appended to /metrics.
    func text() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let rows = HealthReport.rows(server.snapshot, registry: registry)
        let health = server.health
        func labels(_ r: HealthReport.EndpointRow) -> String {
            "upstream=\"\(escape(r.upstream))\",color=\"\(r.color)\",endpoint=\"\(escape(r.address))\""
        }
        family("switchyard_endpoint_healthy", "gauge", "1 when the endpoint takes requests: not failing its health check, not ejected.")
        for r in rows { out += "switchyard_endpoint_healthy{\(labels(r))} \(health.isAvailable(endpoint: r.id) ? 1 : 0)\n" }
        family("switchyard_endpoint_ejected", "gauge", "1 while the endpoint is ejected for consecutive failures.")
        for r in rows { out += "switchyard_endpoint_ejected{\(labels(r))} \(health.health(endpoint: r.id) == .ejected ? 1 : 0)\n" }
        family("switchyard_endpoint_ejection_seconds", "gauge", "Length of the endpoint's latest ejection (doubles while it keeps failing).")
        for r in rows {
            out += "switchyard_endpoint_ejection_seconds{\(labels(r))} \(Double(health.lastEjectionMs(endpoint: r.id)) / 1000)\n"
        }
        family("switchyard_endpoint_health_transitions_total", "counter", "Health check verdict changes (healthy to unhealthy and back).")
        for r in rows { out += "switchyard_endpoint_health_transitions_total{\(labels(r))} \(health.transitions(endpoint: r.id))\n" }
        family("switchyard_endpoint_health_checks_total", "counter", "Active health checks run, by result.")
        for r in rows {
            out += "switchyard_endpoint_health_checks_total{\(labels(r)),result=\"pass\"} \(health.checks(endpoint: r.id, passed: true))\n"
            out += "switchyard_endpoint_health_checks_total{\(labels(r)),result=\"fail\"} \(health.checks(endpoint: r.id, passed: false))\n"
        }
        family("switchyard_endpoint_ejections_total", "counter", "Ejections for consecutive failures (outlierDetection).")
        for r in rows { out += "switchyard_endpoint_ejections_total{\(labels(r))} \(health.ejections(endpoint: r.id))\n" }

        let upstreams = HealthReport.resilience(server)
        for (i, c) in ResilienceCounter.allCases.enumerated() {
            family(c.metricName, "counter", c.help)
            for u in upstreams {
                out += "\(c.metricName){upstream=\"\(escape(u.upstream))\"} \(u.counts[i].value)\n"
            }
        }
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
