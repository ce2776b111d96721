// Warm-up before a flip: plain HTTP/1.1 GETs to the idle color's endpoints (waking cold function
// instances), run by the proxy's warm-up client on an event loop; here, what the operator reads.
import Proxy
import Reactor

public struct WarmupReport: Sendable {
    public var path: String
    public var endpoints: [String]
    /// One per completed request, in order.
    public var latenciesMs: [Double] = []
    /// Why the warm-up failed; nil when every request succeeded.
    public var failure: String?

    public var succeeded: Bool { failure == nil }

    public var value: ControlValue {
        var v: ControlValue = [
            "path": .string(path),
            "endpoints": ControlValue(endpoints),
            "requests": .int(latenciesMs.count),
            "latenciesMs": .array(latenciesMs.map { .double($0) }),
        ]
        let sorted = latenciesMs.sorted()
        if let first = sorted.first, let last = sorted.last {
            v.set("minMs", .double(first))
            v.set("p50Ms", .double(sorted[sorted.count / 2]))
            v.set("maxMs", .double(last))
        }
        if let failure { v.set("failure", .string(failure)) }
        return v
    }
}

public enum Warmup {
    /// Sends `warmup.requests` GETs round-robin over `endpoints` from one of the proxy's event
    /// loops, stopping at the first failure (no answer within `timeoutMs`, or a 5xx status);
    /// `done` gets the report on that loop's thread.
    static func start(_ warmup: Config.Warmup, endpoints: [Address], tls: UpstreamTLS? = nil, server: ProxyServer?,
                      done: @escaping @Sendable (WarmupReport) -> Void) {
        let base = WarmupReport(path: warmup.path, endpoints: endpoints.map(\.description))
        var targets: [WarmupTarget] = []
        for e in endpoints {
            guard let address = SocketAddress(host: e.numericHost, port: e.port) else {
                var report = base
                report.failure = "\(e) GET \(warmup.path): bad address"
                return done(report)
            }
            targets.append(WarmupTarget(address: address, host: e.written, tls: tls, tlsName: tls?.serverName ?? e.host))
        }
        guard let server else {
            var report = base
            report.failure = "the proxy is not running"
            return done(report)
        }
        server.warmUp(targets, path: warmup.path, requests: warmup.requests, timeoutMs: warmup.timeoutMs) { result in
            var report = base
            report.latenciesMs = result.latenciesNs.map { Double($0) / 1_000_000 }
            report.failure = result.failure
            done(report)
        }
    }
}
