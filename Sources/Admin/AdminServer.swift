// The admin listener (loopback by default): /metrics in Prometheus text format, /healthz and
// /readyz, the read-only status page /status (and /status.json). It runs its own event loop on its own thread with non-blocking sockets, so a probe is
// answered while other admin clients sit idle or read slowly. (The blocking server it replaces
// served one connection at a time with 2 s timeouts: /healthz took ~5 s behind three idle
// connections, long enough for an orchestrator to restart the pod.)
import Config
import Glibc
import HTTP1
import Proxy
import Reactor
import Rollouts
import Runtime

public final class AdminServer: @unchecked Sendable {
    public struct Limits: Sendable {
        /// Open admin connections; at the cap a new one closes the one idle the longest.
        public var maxConnections = 64
        /// A request head must be complete this long after its first byte (or after the accept,
        /// for a connection's first request).
        public var headerMs: UInt64 = 10_000
        /// A kept-alive connection with no request, or a response its client does not read, is
        /// closed after this long.
        public var idleMs: UInt64 = 60_000

        public init() {}
    }

    public let address: SocketAddress
    let limits: Limits
    let httpLimits = HTTPLimits(maxHeadBytes: 8192, maxHeaders: 100, maxURIBytes: 4096)
    let loop: EventLoop
    private let server: ProxyServer
    private let metrics: AdminMetrics
    private let acceptor: AdminAcceptor
    /// The status page's data and its minute of samples (loop thread only).
    private let status: StatusSource
    private let sampler: StatusSampler
    /// Loop thread only.
    private var connections: [AdminConnection] = []

    /// Binds now (so a bad address is a start-up error); serves after `start()`.
    public init(address: SocketAddress, server: ProxyServer, registry: EndpointRegistry,
                limits: Limits = Limits(), reloads: ReloadCounts? = nil, version: String = "",
                rollouts: RolloutBoard? = nil, guards: GuardBoard? = nil, credentials: CredentialRefresher? = nil,
                fleet: (any SharedStateStore)? = nil, hooks: Hooks? = nil) throws(SystemError) {
        self.server = server
        self.limits = limits
        metrics = AdminMetrics(server: server, registry: registry, reloads: reloads, version: version, rollouts: rollouts, guards: guards,
                               credentials: credentials, fleet: fleet, hooks: hooks)
        loop = try EventLoop(index: 0)
        let status = StatusSource(server: server, registry: registry, guards: guards)
        self.status = status
        let loop = loop
        sampler = StatusSampler(loop: loop) { status.history.add(status.sample(atMs: loop.now)) }
        let fd = try Sys.socket(family: address.family)
        Sys.setReuse(fd, port: false)
        do {
            try Sys.bind(fd, address)
            try Sys.listen(fd, backlog: 128)
        } catch {
            Sys.close(fd)
            throw error
        }
        self.address = Sys.localAddress(fd) ?? address
        acceptor = AdminAcceptor(loop: loop, listenFd: fd)
        acceptor.server = self
        do { try loop.registerListener(acceptor, fd: fd) } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Starts the loop's thread (it inherits the caller's blocked signals). The thread keeps
    /// the server alive for the life of the process.
    public func start() {
        loop.execute { [self] in sampler.start() }
        _ = LoopThread.start { [self] in loop.run() }
    }

    // MARK: connections (loop thread)

    func admit(_ fd: Int32) {
        if connections.count >= limits.maxConnections { evict() }
        let c = AdminConnection(server: self)
        do { try loop.register(c, fd: fd) } catch {
            Sys.close(fd)
            return
        }
        connections.append(c)
        c.start()
    }

    /// Closes the connection idle the longest; with none idle, the least recently active (a
    /// client still trickling a head, or not reading its answer).
    private func evict() {
        var victim: AdminConnection?
        for c in connections {
            guard let v = victim else { victim = c; continue }
            if (c.isIdle && !v.isIdle) || (c.isIdle == v.isIdle && c.lastActive < v.lastActive) { victim = c }
        }
        victim?.finish()
    }

    func remove(_ c: AdminConnection) {
        if let i = connections.firstIndex(where: { $0 === c }) { connections.remove(at: i) }
    }

    // MARK: endpoints

    /// The answer to one parsed request. `path` is the target up to its query.
    func answer(method: Method, path: UnsafeRawBufferPointer) -> AdminAnswer {
        guard method == .get || method == .head else { return AdminAnswer(status: 405, body: "GET only\n") }
        if path.elementsEqual("/metrics".utf8) {
            return AdminAnswer(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.text())
        }
        if path.elementsEqual("/status".utf8) {
            return AdminAnswer(status: 200, contentType: "text/html; charset=utf-8",
                               body: StatusHTML.page(status.report(nowMs: loop.now)))
        }
        if path.elementsEqual("/status.json".utf8) {
            return AdminAnswer(status: 200, contentType: "application/json", body: status.report(nowMs: loop.now).json)
        }
        if path.elementsEqual("/healthz".utf8) { return AdminAnswer(status: 200, body: "ok\n") }
        if path.elementsEqual("/readyz".utf8) {
            // Not ready from the moment a drain begins, while in-flight requests still finish:
            // a load balancer stops sending before the listeners close.
            if server.isDraining { return AdminAnswer(status: 503, body: "draining\n") }
            // A routed upstream with no healthy endpoint would answer 503 to every request.
            if let why = HealthReport.notReadyReason(server) { return AdminAnswer(status: 503, body: "not ready: \(why)\n") }
            return AdminAnswer(status: 200, body: "ready\n")
        }
        return AdminAnswer(status: 404, body: "not found: /metrics, /healthz, /readyz, /status, /status.json\n")
    }
}

struct AdminAnswer {
    var status: Int
    var contentType = "text/plain"
    var body: String
}

/// Accepts admin connections: level-triggered, so connections left after one bounded burst
/// wake the loop again.
final class AdminAcceptor: Pollable {
    weak var server: AdminServer?
    private let listenFd: Int32

    init(loop: EventLoop, listenFd: Int32) {
        self.listenFd = listenFd
        super.init(loop: loop)
    }

    override func handleEvents(_ events: UInt32) {
        for _ in 0..<32 {
            // nil: none waiting, or EMFILE and friends (the connection stays queued).
            guard let fd = try? Sys.accept(listenFd) else { return }
            guard let server else { return Sys.close(fd) }
            server.admit(fd)
        }
    }
}
