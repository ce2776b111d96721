// One event loop's share of the proxy: its client connections, its upstream connection pools
// (reused across its client connections), its balancers and its copy of the routing snapshot.
import CLinux
import Glibc
import Reactor
import Routing
import SigV4
import TLS

final class Worker {
    let loop: EventLoop
    let buffers: BufferPool
    let settings: ProxySettings
    let store: SnapshotStore
    let stats: WorkerStats
    let events: EventLog
    /// Endpoint health for the whole process, and this loop's limits, budgets and counters
    /// (WorkerResilience.swift).
    let health: HealthBoard
    let resilience: WorkerResilience
    /// This loop's labelled slots, the label sets they share, and the ids of the current
    /// snapshot's series.
    let metrics: WorkerMetrics
    let metricSeries: MetricSeries
    private(set) var series = SnapshotSeries()
    /// The access and error logs' side on this loop (nil without a log writer).
    let logs: WorkerLogs?
    private(set) var logLabels = LogLabels()
    /// The response header naming each variant ("X-Switchyard-Variant: canary\r\n"), kept in one
    /// arena per snapshot: variantLines[variantBase[route] + variant].
    private var variantArena: [UInt8] = []
    private var variantLines: [Range<Int>] = []
    private var variantBase: [Int] = []
    private(set) var snapshot: Snapshot
    private var version: UInt64

    /// balancers[upstream][color], color 0 = blue or plain pool, 1 = green.
    var balancers: [[PoolBalancer]] = []
    /// Idle upstream connections by endpoint id, for primary requests and shadow copies alike.
    var idle: [[UpstreamConnection]] = []
    private var addresses: [SocketAddress?] = []
    /// Mirror caps by upstream name (they outlive snapshots: copies in flight keep theirs),
    /// and by upstream index of the current snapshot (WorkerMirrors.swift).
    var gatesByName: [String: MirrorGate] = [:]
    var gates: [MirrorGate?] = []
    /// Copies with bytes to write, written after the current batch of events.
    var mirrorDirty: [MirrorCopy] = []
    var mirrorFlushing: [MirrorCopy] = []
    /// Shadow endpoints this loop found refusing, by endpoint id.
    var shadowMarks: [ShadowMark] = []
    /// Requests awaiting a shadow comparison, by request id (ShadowCompare.swift).
    var shadow = ShadowTable()

    var listeners: [Listener] = []
    private(set) var clients: [ClientConnection] = []
    private var rng: UInt64
    private(set) var draining = false
    var onDrained: (@Sendable () -> Void)?
    let maxClients: Int
    let workerCount: Int
    let experimentRegistry: ExperimentRegistry
    /// The current snapshot's experiments (WorkerExperiments.swift).
    var experiments: ExperimentBinding?

    init(index: Int, workerCount: Int, settings: ProxySettings, store: SnapshotStore, stats: WorkerStats,
         events: EventLog = EventLog(), health: HealthBoard = HealthBoard(),
         resilience: WorkerResilience = WorkerResilience(stats: ResilienceStats(), slots: ResilienceSlots()),
         metrics: WorkerMetrics, series: MetricSeries, logWriter: LogWriter? = nil,
         experiments: ExperimentRegistry = ExperimentRegistry()) throws(SystemError) {
        let loop = try EventLoop(index: index)
        self.loop = loop
        self.metrics = metrics
        self.metricSeries = series
        logs = logWriter.map { WorkerLogs(loop: loop, writer: $0, settings: settings.accessLog) }
        buffers = BufferPool(blockSize: 32 * 1024)
        self.settings = settings
        self.store = store
        self.stats = stats
        self.events = events
        self.health = health
        self.resilience = resilience
        self.workerCount = workerCount
        experimentRegistry = experiments
        (snapshot, security, version) = store.both
        maxClients = max(1, (settings.maxConnections + workerCount - 1) / workerCount)
        rng = sy_random_seed() ^ UInt64(index &* 0x9E37_79B9)
        rebuildBalancers()
        bindExperiments(snapshot)
        loop.afterEvents = { [unowned(unsafe) self] in self.flushMirrors() }
    }

    // MARK: snapshot

    /// The snapshot a request routes on; picks up a newly published one.
    @inline(__always)
    func currentSnapshot() -> Snapshot {
        if store.generation != version { refreshSnapshot() }
        return snapshot
    }

    @inline(never)
    private func refreshSnapshot() {
        let old = snapshot
        (snapshot, security, version) = store.both
        rebuildBalancers()
        bindExperiments(snapshot)
        closeIdleToRemovedEndpoints()
        noteFlips(from: old)
    }

    /// Closes what a flip left on the idle color, gradually (WorkerTunnels.swift).
    lazy var drainer = TunnelDrainer(worker: self)

    /// Calls `body` with the variant header line for a decision (empty when none).
    @inline(__always)
    func withVariantLine<R>(_ d: Decision, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var range = 0..<0
        if d.route >= 0 && d.route < variantBase.count && d.variant >= 0 {
            let base = variantBase[d.route]
            if base >= 0 && base + d.variant < variantLines.count { range = variantLines[base + d.variant] }
        }
        return variantArena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// The live color of each blue/green upstream (nil for plain pools), by upstream index.
    private var liveColors: [Color?] = []

    @inline(__always)
    func liveColor(upstream: Int) -> Color? { upstream < liveColors.count ? liveColors[upstream] : nil }

    private func rebuildBalancers() {
        // Shared with the other workers (made by whichever adopts the snapshot first).
        let frozen = store.freezer.frozen(snapshot, metricSeries)
        variantArena = frozen.variantArena
        variantLines = frozen.variantLines
        variantBase = frozen.variantBase
        series = frozen.series
        liveColors = snapshot.upstreams.map { u in
            if case .blueGreen(let bg) = u.kind { return bg.live }
            return nil
        }
        if logs != nil { logLabels.learn(series) }
        balancers = snapshot.upstreams.map { u in
            switch u.kind {
            case .pool(let p): return [PoolBalancer(p)]
            case .blueGreen(let bg): return [PoolBalancer(bg.blue), PoolBalancer(bg.green)]
            }
        }
        let maxID = snapshot.upstreams.flatMap { u -> [Endpoint] in
            switch u.kind {
            case .pool(let p): return p.endpoints
            case .blueGreen(let bg): return bg.blue.endpoints + bg.green.endpoints
            }
        }.map(\.id).max() ?? -1
        if idle.count <= maxID {
            idle.append(contentsOf: repeatElement([], count: maxID + 1 - idle.count))
            addresses.append(contentsOf: repeatElement(nil, count: maxID + 1 - addresses.count))
        }
        if shadowMarks.count <= maxID {
            shadowMarks.append(contentsOf: repeatElement(ShadowMark(), count: maxID + 1 - shadowMarks.count))
        }
        gates = Array(repeating: nil, count: snapshot.upstreams.count)
        resilience.adopt(snapshot, worker: loop.index, workers: workerCount, maxEndpointID: maxID)
        endpointTLS.rebuild(snapshot, security: security, count: maxID + 1)
        signing = PoolTable(snapshot, security.signing)
        bearers = PoolTable(snapshot, security.bearer)
    }

    /// The Date line of the answers the proxy makes itself.
    var httpDate = HTTPDate()

    /// Which pools speak TLS, as published with the snapshot.
    private var security: UpstreamSecurity
    /// Each endpoint id's TLS, name and session to resume (UpstreamDial.swift).
    var endpointTLS = EndpointTLSTable()
    /// Which pools sign their requests (UpstreamSigning.swift) and which send a bearer token
    /// (UpstreamBearer.swift); empty when none does, so a request pays one count check.
    private(set) var signing = PoolTable<UpstreamSigning>()
    private(set) var bearers = PoolTable<UpstreamBearer>()
    /// This loop's signing keys and the buffers a signed or token-bearing head is rebuilt in.
    var signingScratch = SigningScratch()

    /// Idle pooled connections to endpoints that are no longer in any live set are closed; so
    /// are connections that come back to the pool after their endpoint left it (they were busy
    /// when the snapshot changed).
    private func closeIdleToRemovedEndpoints() {
        let live = liveEndpointIDs()
        liveEndpoint = (0..<idle.count).map { live.contains($0) }
        for id in idle.indices where !live.contains(id) && !idle[id].isEmpty {
            let conns = idle[id]
            idle[id].removeAll()
            for c in conns { c.closeIdle() }
        }
    }

    /// Endpoint ids new requests may go to under the current snapshot, by id.
    private var liveEndpoint: [Bool] = []

    private func liveEndpointIDs() -> Set<Int> {
        var live = Set<Int>()
        for u in snapshot.upstreams {
            switch u.kind {
            case .pool(let p): for e in p.endpoints where !e.draining { live.insert(e.id) }
            case .blueGreen(let bg):
                for e in bg.pool(bg.live).endpoints where !e.draining { live.insert(e.id) }
                if bg.previewHeader != nil {
                    for e in bg.pool(bg.live.other).endpoints where !e.draining { live.insert(e.id) }
                }
            }
        }
        // Upstreams used as mirrors or split variants are included above: every upstream is.
        return live
    }

    /// A request was routed: its series for the metrics and the access log, counted as routed.
    @inline(__always)
    func countRequest(_ e: inout Exchange) {
        let d = e.decision
        e.routeSeries = series.route(d)
        if d.route >= 0 {
            metrics.routed.add(Int(e.routeSeries), 0)
            if d.untrustedSteering { metrics.routed.add(Int(e.routeSeries), 1) }
        }
        if d.upstream >= 0 { e.poolSeries = series.pool(upstream: d.upstream, color: d.color) }
        if experiments != nil { exposeUnit(&e) }
    }

    /// An exchange record closed: counted once, by status class, whoever made the response;
    /// its latencies recorded; logged (`logPrefix`: the access-log line's start, when sampled).
    func exchangeFinished(_ e: Exchange, logPrefix: [UInt8]) {
        let route = Int(e.routeSeries >= 0 ? e.routeSeries : series.noRoute)
        if e.status > 0 {
            stats.countResponse(status: e.status)
            metrics.responses.add(route, WorkerMetrics.responseSlot(status: e.status, proxy: e.source == .proxy))
            metrics.requestDuration.observe(route, ns: e.durationNs)
        }
        if e.responseHeadNs > 0 && e.upstreamReadyNs > 0 {
            metrics.upstreamResponse.observe(Int(e.poolSeries), ns: e.upstreamDurationNs)
        }
        if e.mirrorCopies > 0 && !shadow.joins.isEmpty { shadowPrimaryFinished(e) }
        if e.decision.goalHits.count > 0 { convertGoals(e) }
        guard let logs else { return }
        if e.logged && !logs.logExchange(e, prefix: logPrefix, labels: logLabels) { stats.add(.accessLogDropped) }
        if e.source == .proxy && e.status >= 502 && e.status <= 504 { logs.logProxyError(e, labels: logLabels) }
    }

    /// Adopts a newly published snapshot now (so idle connections to removed endpoints close
    /// even when no request arrives).
    func adoptSnapshot() { _ = currentSnapshot() }

    // MARK: endpoints

    // Endpoint choice (health, ejection, limits) is `choose` in WorkerResilience.swift.

    func address(for e: Endpoint) -> SocketAddress? {
        if e.id < addresses.count, let a = addresses[e.id] { return a }
        let a = SocketAddress(host: e.host, port: e.port)
        if e.id < addresses.count { addresses[e.id] = a }
        return a
    }

    /// The address endpoint `id` was last reached at, when known.
    func address(endpointID id: Int) -> SocketAddress? { id >= 0 && id < addresses.count ? addresses[id] : nil }

    /// An idle pooled connection to the endpoint, or a new one being connected.
    func acquireUpstream(_ e: Endpoint) -> UpstreamConnection? {
        if e.id < idle.count {
            while let c = idle[e.id].popLast() {
                if c.isUsable { return c }
                c.closeIdle()
            }
        }
        guard let addr = address(for: e) else { return nil }
        return UpstreamConnection.connect(worker: self, target: UpstreamTarget(endpoint: e.id, address: addr))
    }

    func returnToPool(_ c: UpstreamConnection) {
        guard !draining, c.endpointID < idle.count,
              c.endpointID >= liveEndpoint.count || liveEndpoint[c.endpointID] else {
            c.closeIdle()
            return
        }
        idle[c.endpointID].append(c)
        loop.setDeadline(c, afterMs: settings.upstreamIdleMs)
    }

    func removeFromPool(_ c: UpstreamConnection) {
        guard c.endpointID < idle.count else { return }
        if let i = idle[c.endpointID].firstIndex(where: { $0 === c }) {
            idle[c.endpointID].remove(at: i)
        }
    }

    // Shadow copies: WorkerMirrors.swift.

    // MARK: relays

    /// Relays of finished exchanges, lent again to the next one.
    private var relays: [Relay] = []

    func takeRelay(for client: ClientConnection) -> Relay {
        let r = relays.popLast() ?? Relay(worker: self)
        r.client = client
        return r
    }

    func recycle(_ r: Relay) {
        r.reset()
        if relays.count < 1024 { relays.append(r) }
    }

    // MARK: pipes

    /// Empty pipes for splicing long bodies, kept for reuse.
    private var pipes: [(Int32, Int32)] = []

    func takePipe() -> (Int32, Int32)? {
        if let p = pipes.popLast() { return p }
        return try? Sys.pipe()
    }

    /// An empty pipe goes back for reuse; one with bytes left in it is closed.
    func givePipe(_ p: (Int32, Int32), empty: Bool) {
        if empty && pipes.count < 64 {
            pipes.append(p)
        } else {
            Sys.close(p.0)
            Sys.close(p.1)
        }
    }

    // MARK: clients

    func add(_ c: ClientConnection) {
        c.slot = clients.count
        clients.append(c)
    }

    func remove(_ c: ClientConnection) {
        let i = c.slot
        guard i >= 0, i < clients.count, clients[i] === c else { return }
        let last = clients.removeLast()
        if i < clients.count {
            clients[i] = last
            last.slot = i
        }
        c.slot = -1
        if draining && clients.isEmpty { finishDrain() }
    }

    @inline(__always)
    func nextRandom() -> UInt64 {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: listeners

    /// TLS servers by listening address, for listeners added later too.
    private var listenerTLS: [String: TLSServer] = [:]

    func setListenerTLS(_ byAddress: [String: TLSServer]) {
        listenerTLS = byAddress
        for l in listeners { l.tls = byAddress[l.key] }
    }

    func addListener(fd: Int32, index: Int, key: String) {
        guard !draining else { return }
        let l = Listener(worker: self, fd: fd, index: index, key: key)
        l.tls = listenerTLS[key]
        do {
            try l.start()
            listeners.append(l)
        } catch {}
    }

    func renumberListener(fd: Int32, index: Int) {
        for l in listeners where l.listenFd == fd { l.index = index }
    }

    func removeListener(fd: Int32) {
        listeners.removeAll { l in
            if l.listenFd == fd { l.stop(); return true }
            return false
        }
    }

    // MARK: drain

    /// Stop accepting; close idle clients; let in-flight requests finish with Connection: close.
    func beginDrain() {
        guard !draining else { return }
        draining = true
        for l in listeners { l.stop() }
        for c in clients { c.drain() }
        for id in idle.indices {
            let conns = idle[id]
            idle[id].removeAll()
            for c in conns { c.closeIdle() }
        }
        if clients.isEmpty { finishDrain() }
    }

    /// Closes every connection now (the drain timeout passed).
    func forceClose() {
        for c in clients { c.abort() }
        finishDrain()
    }

    private func finishDrain() {
        logs?.flush()
        loop.stop()
        onDrained?()
        onDrained = nil
    }
}
