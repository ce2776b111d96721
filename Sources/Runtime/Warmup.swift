// Warm-up before a flip: plain HTTP/1.1 GETs to the idle color's endpoints (waking cold function
// instances), with the Host its requests will carry, run by the proxy's warm-up client on an
// event loop; here, where they go and what the operator reads.
import Config
import Proxy
import Reactor
import Routing

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
    /// Where the warm-up of a pool goes: each serving endpoint (each address of one named by
    /// host name), with the Host the pool's requests carry: its `hostHeader`, else the endpoint
    /// as written. `labels` name them in the report; `failure` says why one cannot be reached.
    /// A pool reached over TLS passes its `tls`, and `tlsName` gives the name each endpoint is
    /// reached by (SNI and verification). `setHeaders`: the fields the pool's requests carry;
    /// `bearer`: the pool's token (`auth.google`); `signing`: its SigV4 signing (`auth.aws`):
    /// put on each GET as it is sent.
    package static func targets(_ endpoints: [Address], hostHeader: String?, setHeaders: [Config.SetHeader] = [], names: ResolvedNames,
                        tls: UpstreamTLS? = nil, bearer: UpstreamBearer? = nil, signing: UpstreamSigning? = nil,
                        tlsName: (Address) -> String = { $0.host }) -> (targets: [WarmupTarget], labels: [String], failure: String?) {
        let lines = setHeaders.flatMap { Routing.SetHeader(name: Array($0.name.utf8), value: $0.value.bytes).line }
        var targets: [WarmupTarget] = []
        var labels: [String] = []
        for e in endpoints {
            let host = hostHeader ?? e.written
            guard e.hostName != nil else {
                guard let numeric = e.numericHost, let address = SocketAddress(host: numeric, port: e.port) else {
                    return (targets, labels + [e.description], "\(e) bad address")
                }
                targets.append(WarmupTarget(address: address, host: host, tls: tls, tlsName: tlsName(e), headerLines: lines, bearer: bearer, signing: signing))
                labels.append(e.description)
                continue
            }
            for a in names.addresses[e.written] ?? [] {
                guard let address = SocketAddress(host: a.host, port: a.port) else { continue }
                targets.append(WarmupTarget(address: address, host: host, tls: tls, tlsName: tlsName(e), headerLines: lines, bearer: bearer, signing: signing))
                labels.append(ResolvedNames.key(e.written, a))
            }
        }
        return (targets, labels, nil)
    }

    /// Sends `warmup.requests` GETs round-robin over `targets` from one of the proxy's event
    /// loops, stopping at the first failure (no answer within `timeoutMs`, or a 5xx status);
    /// `done` gets the report on that loop's thread.
    package static func start(_ warmup: Config.Warmup, targets: [WarmupTarget], labels: [String], failure: String? = nil,
                      server: ProxyServer?, done: @escaping @Sendable (WarmupReport) -> Void) {
        let base = WarmupReport(path: warmup.path, endpoints: labels)
        if let failure {
            var report = base
            report.failure = "\(failure) (GET \(warmup.path))"
            return done(report)
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
