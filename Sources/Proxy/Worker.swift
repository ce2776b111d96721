// One event loop's share of the proxy: its client connections, its upstream connection pools
// (reused across its client connections), its balancers and its copy of the routing snapshot.
import CLinux
import Glibc
import Reactor
import Routing
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
    /// Idle upstream connections by endpoint id.
    var idle: [[UpstreamConnection]] = []
    private var addresses: [SocketAddress?] = []
    /// Mirror caps by upstream name (they outlive snapshots: copies in flight keep theirs),
    /// and by upstream index of the current snapshot.
    private var gatesByName: [String: MirrorGate] = [:]
    private var gates: [MirrorGate?] = []
    /// Idle shadow connections by endpoint id, and when a shadow endpoint that refused a
    /// connection may be tried again.
    private var mirrorConns: [[MirrorConnection]] = []
    /// Shadow connections with queued bytes, written after the current batch of events.
    var mirrorDirty: [MirrorConnection] = []
    /// Requests awaiting a shadow comparison, by request id (ShadowCompare.swift).
    var shadow = ShadowTable()
    private var mirrorFlushing: [MirrorConnection] = []
    private var mirrorDownUntil: [UInt64] = []

    var listeners: [Listener] = []
    private(set) var clients: [ClientConnection] = []
    private var rng: UInt64
    private(set) var draining = false
    var onDrained: (@Sendable () -> Void)?
    let maxClients: Int
    let workerCount: Int

    init(index: Int, workerCount: Int, settings: ProxySettings, store: SnapshotStore, stats: WorkerStats,
         events: EventLog = EventLog(), health: HealthBoard = HealthBoard(),
         resilience: WorkerResilience = WorkerResilience(stats: ResilienceStats(), slots: ResilienceSlots()),
         metrics: WorkerMetrics, series: MetricSeries, logWriter: LogWriter? = nil) throws(SystemError) {
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
        (snapshot, security, version) = store.both
        maxClients = max(1, (settings.maxConnections + workerCount - 1) / workerCount)
        rng = sy_random_seed() ^ UInt64(index &* 0x9E37_79B9)
        rebuildBalancers()
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
        (snapshot, security, version) = store.both
        rebuildBalancers()
        closeIdleToRemovedEndpoints()
    }

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
        if mirrorConns.count <= maxID {
            mirrorConns.append(contentsOf: repeatElement([], count: maxID + 1 - mirrorConns.count))
            mirrorDownUntil.append(contentsOf: repeatElement(0, count: maxID + 1 - mirrorDownUntil.count))
        }
        gates = Array(repeating: nil, count: snapshot.upstreams.count)
        resilience.adopt(snapshot, worker: loop.index, workers: workerCount, maxEndpointID: maxID)
        rebuildTLS(maxID: maxID)
    }

    // MARK: upstream TLS

    /// Which pools speak TLS, as published with the snapshot.
    private var security: UpstreamSecurity
    /// By endpoint id: its TLS (nil: plain), the name it is reached by, and a session to
    /// resume the next connection with.
    private var tlsByEndpoint: [UpstreamTLS?] = []
    private var tlsNames: [String] = []
    private var tlsSessions: [TLSSession?] = []

    private func rebuildTLS(maxID: Int) {
        let count = maxID + 1
        var next = [UpstreamTLS?](repeating: nil, count: count)
        var names = [String](repeating: "", count: count)
        for u in snapshot.upstreams {
            let pools: [(String?, Pool)]
            switch u.kind {
            case .pool(let p): pools = [(nil, p)]
            case .blueGreen(let bg): pools = [("blue", bg.blue), ("green", bg.green)]
            }
            for (color, pool) in pools {
                guard let tls = security.pools[UpstreamSecurity.key(upstream: u.name, color: color)] else { continue }
                for e in pool.endpoints where e.id < count {
                    next[e.id] = tls
                    // SNI and the verified name: serverName, else the Host sent (without its
                    // port), else the endpoint's name as written, else its address.
                    names[e.id] = tls.serverName ?? pool.hostHeaderName ?? e.hostName ?? e.host
                }
            }
        }
        if tlsSessions.count < count { tlsSessions.append(contentsOf: repeatElement(nil, count: count - tlsSessions.count)) }
        for id in 0..<min(tlsByEndpoint.count, count) where tlsByEndpoint[id] !== next[id] || tlsNames[id] != names[id] {
            tlsSessions[id] = nil   // a session belongs to the context and name that made it
        }
        tlsByEndpoint = next
        tlsNames = names
    }

    /// The TLS to reach endpoint `id` with, and the name it is reached by; nil for plain.
    func upstreamTLS(endpoint id: Int) -> (tls: UpstreamTLS, name: String)? {
        guard id < tlsByEndpoint.count, let t = tlsByEndpoint[id] else { return nil }
        return (t, tlsNames[id])
    }

    /// Opens the TLS session of a new connection to endpoint `id` (resuming when it can).
    func startTLS(_ transport: inout Transport, endpoint id: Int) -> Bool {
        guard let (t, name) = upstreamTLS(endpoint: id) else { return true }
        guard let c = t.client.connect(fd: transport.fd, host: name, resume: tlsSessions[id]) else { return false }
        transport.tls = c
        return true
    }

    /// Keeps the newest session an endpoint issued on `transport`, and counts the handshake once.
    func noteTLS(_ transport: Transport, endpoint id: Int, counted: inout Bool) {
        guard let c = transport.tls, c.established else { return }
        if !counted {
            counted = true
            stats.add(.upstreamTLSHandshakes)
            if c.resumed { stats.add(.upstreamTLSResumed) }
        }
        if let s = c.takeSession(), id < tlsSessions.count, tlsByEndpoint[id] != nil { tlsSessions[id] = s }
    }

    /// A TLS session with an upstream failed: one line (rate-limited) naming the upstream,
    /// the endpoint and the reason.
    func upstreamTLSFailed(_ transport: Transport, endpoint id: Int) {
        guard let reason = transport.tlsFailure, let (t, name) = upstreamTLS(endpoint: id) else { return }
        stats.add(.upstreamTLSFailures)
        let address = id < addresses.count ? addresses[id].map { "\($0)" } ?? name : name
        events.write(kind: "upstream-tls \(t.upstream)", "upstream \(t.upstream): TLS with \(name) (\(address)) failed: \(reason)")
    }

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
        if d.route >= 0 { metrics.routed.add(Int(e.routeSeries), 0) }
        if d.upstream >= 0 { e.poolSeries = series.pool(upstream: d.upstream, color: d.color) }
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

    /// An idle pooled connection to the endpoint, or a new one being connected.
    func acquireUpstream(_ e: Endpoint) -> UpstreamConnection? {
        if e.id < idle.count {
            while let c = idle[e.id].popLast() {
                if c.isUsable { return c }
                c.closeIdle()
            }
        }
        guard let addr = address(for: e) else { return nil }
        return UpstreamConnection.connect(worker: self, endpointID: e.id, address: addr)
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

    // MARK: mirrors

    func mirrorGate(upstream: Int) -> MirrorGate {
        if let g = gates[upstream] { return g }
        let u = snapshot.upstreams[upstream]
        // This worker's share of the upstream's limits: the shares of all workers add up to the
        // limit exactly, so together they never hold more copies or bytes than it allows.
        let cap = MirrorGate.share(of: u.mirrorMaxInFlight, worker: loop.index, workers: workerCount)
        let byteCap = MirrorGate.share(of: u.mirrorMaxBufferBytes, worker: loop.index, workers: workerCount)
        let g: MirrorGate
        if let existing = gatesByName[u.name] {
            // New limits apply to copies already counted, which finish against this gate.
            existing.cap = cap
            existing.byteCap = byteCap
            g = existing
        } else {
            g = MirrorGate(cap: cap, byteCap: byteCap)
            gatesByName[u.name] = g
        }
        gates[upstream] = g
        return g
    }

    func mirrorEndpointUp(_ e: Endpoint) -> Bool {
        e.id < mirrorDownUntil.count && loop.now >= mirrorDownUntil[e.id]
    }

    /// Queues a copy on a connection to its endpoint that can take it, opening one if none can.
    func dispatchMirror(_ c: MirrorCopy) {
        let id = c.endpoint.id
        guard id < mirrorConns.count, !draining else { c.finish(.mirrorsFailed); return }
        for conn in mirrorConns[id] where conn.canTake(hasBody: c.hasBody) {
            conn.enqueue(c)
            return
        }
        guard mirrorEndpointUp(c.endpoint), let addr = address(for: c.endpoint),
              let conn = MirrorConnection.connect(worker: self, endpointID: id, address: addr) else {
            mirrorEndpointFailed(id)
            c.finish(.mirrorsFailed)
            return
        }
        mirrorConns[id].append(conn)
        conn.enqueue(c)
    }

    /// A shadow endpoint refused or timed out: leave it alone for a second rather than paying
    /// a failed connect for every copy.
    func mirrorEndpointFailed(_ id: Int) {
        if id < mirrorDownUntil.count { mirrorDownUntil[id] = loop.now + 1_000 }
        mirrorEndpointFailedPassively(id)
    }

    func removeMirrorConnection(_ c: MirrorConnection) {
        guard c.endpointID < mirrorConns.count else { return }
        if let i = mirrorConns[c.endpointID].firstIndex(where: { $0 === c }) { mirrorConns[c.endpointID].remove(at: i) }
    }

    /// After each batch of events: one write per shadow connection for everything queued.
    func flushMirrors() {
        guard !mirrorDirty.isEmpty else { return }
        swap(&mirrorDirty, &mirrorFlushing)
        for c in mirrorFlushing { c.flush() }
        mirrorFlushing.removeAll(keepingCapacity: true)
    }

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
        for id in mirrorConns.indices {
            for c in mirrorConns[id] where c.isIdle { c.close() }
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
