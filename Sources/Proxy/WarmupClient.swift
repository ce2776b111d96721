// Warm-up before a flip: GETs to the idle color's endpoints (waking cold function instances),
// one at a time, each an UpstreamProbe (the one upstream client: TLS with the pool's policy,
// sessions resumed from one request to the next), read to the end of the answer, with the
// configured timeout. The control plane is told the outcome; it never waits on a socket.
import Glibc
import HTTP1
import Reactor
import TLS

/// Where one warm-up GET goes.
public struct WarmupTarget: Sendable {
    public let address: SocketAddress
    /// The Host header (the endpoint as written in the config).
    public let host: String
    /// Set when the pool speaks TLS, with the name it is reached by (SNI, verification).
    public let tls: UpstreamTLS?
    public let tlsName: String
    /// The fields the pool sets on every request (`setHeaders`), as "Name: value\r\n" lines:
    /// a function that needs its key would not start for a request without it.
    public let headerLines: [UInt8]
    /// The pool's token and SigV4 signing, put on each GET when it is sent.
    public let bearer: UpstreamBearer?
    public let signing: UpstreamSigning?
    public init(address: SocketAddress, host: String, tls: UpstreamTLS? = nil, tlsName: String = "", headerLines: [UInt8] = [],
                bearer: UpstreamBearer? = nil, signing: UpstreamSigning? = nil) {
        self.bearer = bearer
        self.signing = signing
        self.address = address
        self.host = host
        self.tls = tls
        self.tlsName = tlsName
        self.headerLines = headerLines
    }
}

/// What a warm-up found: the latency of each completed request, in order, and why it stopped
/// early (nil when every request got an answer below 500).
public struct WarmupResult: Sendable {
    public var latenciesNs: [UInt64] = []
    public var failure: String?
    public init() {}
}

final class WarmupClient {
    private unowned(unsafe) let worker: Worker
    private let targets: [WarmupTarget]
    private let path: String
    private let requests: Int
    private let timeoutMs: Int
    private let done: @Sendable (WarmupResult) -> Void
    private var result = WarmupResult()
    private var index = 0
    private var startedNs: UInt64 = 0
    /// The request in flight (holds this client until it ends).
    private var probe: UpstreamProbe?
    /// The newest TLS session each target issued: the next request to it resumes.
    private var sessions: [TLSSession?]

    init(worker: Worker, targets: [WarmupTarget], path: String, requests: Int, timeoutMs: Int,
         done: @escaping @Sendable (WarmupResult) -> Void) {
        self.worker = worker
        self.targets = targets
        self.path = path
        self.requests = requests
        self.timeoutMs = timeoutMs
        self.done = done
        sessions = Array(repeating: nil, count: targets.count)
    }

    /// Starts the first request. Runs on the worker's loop.
    func start() {
        guard !targets.isEmpty else { return finish(failure: "the idle color has no serving endpoint") }
        nextRequest()
    }

    private var target: WarmupTarget { targets[index % targets.count] }

    private func nextRequest() {
        if index == requests { return finish(failure: nil) }
        let t = target
        let slot = index % targets.count
        startedNs = Sys.monotonicNs()
        let p = UpstreamProbe(worker: worker, target: UpstreamTarget(address: t.address, tls: t.tls, name: t.tlsName),
                              request: worker.authorized(UpstreamProbe.get(path: path, host: t.host, userAgent: "switchyard-warmup",
                                                                           extra: Array("X-Switchyard-Warmup: 1\r\n".utf8) + t.headerLines),
                                                         bearer: t.bearer, signing: t.signing),
                              timeoutMs: timeoutMs, wholeBody: true) { [self] outcome in
            let session = probe?.session
            probe = nil
            if let session { sessions[slot] = session }
            switch outcome {
            case .answered(let status) where status >= 500:
                finish(failure: "\(t.host) answered GET \(path) with \(status)", prefixed: false)
            case .answered:
                result.latenciesNs.append(Sys.monotonicNs() - startedNs)
                index += 1
                nextRequest()
            case .failed(let why):
                finish(failure: why)
            }
        }
        probe = p
        p.start(resume: sessions[slot])
    }

    private func finish(failure: String?, prefixed: Bool = true) {
        if let failure { result.failure = prefixed && !targets.isEmpty ? "\(target.host) GET \(path): \(failure)" : failure }
        let report = result
        done(report)
    }
}

extension ProxyServer {
    /// Runs a warm-up on the first worker's loop; `done` is called on that loop's thread.
    public func warmUp(_ targets: [WarmupTarget], path: String, requests: Int, timeoutMs: Int,
                       done: @escaping @Sendable (WarmupResult) -> Void) {
        let w = firstWorker
        nonisolated(unsafe) let worker = w
        w.loop.execute {
            WarmupClient(worker: worker, targets: targets, path: path, requests: requests, timeoutMs: timeoutMs, done: done).start()
        }
    }
}
