// Starting the workers (one event loop thread each, each with its own socket for every
// listening address), and stopping gracefully: stop accepting, let in-flight requests finish,
// then exit.
import Dispatch
import Glibc
import Reactor
import Routing
import Synchronization
import TLS

public final class ProxyServer: @unchecked Sendable {
    public let settings: ProxySettings
    public let store: SnapshotStore
    public let stats: [WorkerStats]
    /// Endpoint health (checks and ejections), the retry/limit counters of every loop by
    /// upstream, and the checkers (HealthChecker.swift).
    public let health: HealthBoard
    public let resilienceSlots: ResilienceSlots
    public let resilienceStats: [ResilienceStats]
    private let healthChecks: HealthSupervisor
    /// Labelled metrics, per worker, merged when read.
    public let metrics: ProxyMetrics
    /// The access and error logs' writer thread (nil: lines are not written).
    public let logs: LogWriter?
    /// Built once; each worker's own state changes only on its loop.
    private let workers: [Worker]
    /// Start, shutdown (the signal path) and reloads that add or remove listeners (the control
    /// queue) run here one at a time: `threads` and `groups` change on this queue only.
    private let queue = DispatchQueue(label: "switchyard.server")
    private var threads: [LoopThread] = []
    /// The open listening addresses: config order at start, addresses added by a reload last.
    private var groups: [ListenerGroup] = []
    private let drained = DispatchGroup()
    /// Set once, first thing when a shutdown begins; read from any thread (/readyz).
    private let draining = Atomic<Bool>(false)

    /// Lines about TLS failures and other data-path events (rate-limited); silent until a sink
    /// is set.
    public let events = EventLog()
    /// Every experiment's counts and exposure log, kept across snapshots.
    public let experiments: ExperimentRegistry

    /// The number of event loops `workers` (0 = one per core) means.
    public static func workerCount(for workers: Int) -> Int {
        workers > 0 ? workers : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Opens the listeners (errors here are start-up errors) and builds the workers.
    public init(settings: ProxySettings, snapshot: Snapshot, logs: LogWriter? = nil) throws(SystemError) {
        self.settings = settings
        let experiments = ExperimentRegistry(instance: settings.instance)
        self.experiments = experiments
        let store = SnapshotStore(snapshot)
        let count = ProxyServer.workerCount(for: settings.workers)
        let metrics = ProxyMetrics(workerCount: count)
        let stats = (0..<count).map { _ in WorkerStats() }
        let health = HealthBoard()
        let slots = ResilienceSlots()
        let resilience = (0..<count).map { _ in ResilienceStats() }
        var opened: [ListenerGroup] = []
        var built: [Worker] = []
        do {
            for a in settings.listeners {
                opened.append(try ListenerGroup.open(a, key: a.description, count: count))
            }
            for i in 0..<count {
                let w = try Worker(index: i, workerCount: count, settings: settings, store: store, stats: stats[i],
                                   events: events, health: health,
                                   resilience: WorkerResilience(stats: resilience[i], slots: slots),
                                   metrics: metrics.workers[i], series: metrics.series, logWriter: logs,
                                   experiments: experiments)
                for (li, g) in opened.enumerated() {
                    let l = Listener(worker: w, fd: g.fds[i], index: li, key: g.key)
                    try l.start()
                    w.listeners.append(l)
                }
                built.append(w)
            }
        } catch {
            for g in opened { g.close() }
            throw error
        }
        self.store = store
        self.metrics = metrics
        self.logs = logs
        self.stats = stats
        self.workers = built
        self.groups = opened
        self.health = health
        self.resilienceSlots = slots
        self.resilienceStats = resilience
        self.healthChecks = HealthSupervisor(workers: built)
    }

    public var workerCount: Int { workers.count }

    /// The worker that runs the proxy's own client work (warm-up).
    var firstWorker: Worker { workers[0] }

    /// The addresses actually bound (port 0 resolved), by listener index.
    public var boundAddresses: [SocketAddress] { queue.sync { groups.map(\.bound) } }

    /// True from the moment a shutdown begins: the proxy is finishing what it has and takes
    /// nothing new (/readyz answers 503). Never blocks.
    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// Starts one thread per worker.
    public func start() {
        logs?.start()
        queue.sync {
            guard threads.isEmpty, !isDraining else { return }
            for w in workers {
                drained.enter()
                let group = drained
                w.onDrained = { group.leave() }
                nonisolated(unsafe) let worker = w
                threads.append(LoopThread.start { worker.loop.run() })
            }
        }
        healthChecks.update(store.snapshot, security: store.security)
    }

    /// Publishes a new routing snapshot to every worker (with the TLS of its pools, when given).
    public func publish(_ snapshot: Snapshot, security: UpstreamSecurity? = nil) {
        store.publish(snapshot, security: security)
        healthChecks.update(snapshot, security: store.security)
        for w in workers {
            nonisolated(unsafe) let worker = w
            w.loop.execute { worker.adoptSnapshot() }
        }
    }

    /// The snapshot requests route on now.
    public var snapshot: Snapshot { store.snapshot }

    /// Stops accepting, lets in-flight exchanges finish within `drainMs`, then closes what is
    /// left. Blocks until every worker thread has ended; a second call returns at once.
    public func shutdown() {
        guard !draining.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.sync { drain() }
    }

    private func drain() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard !threads.isEmpty else { return closeListeners() }
        let stoppedAccepting = DispatchGroup()
        for w in workers {
            nonisolated(unsafe) let worker = w
            stoppedAccepting.enter()
            w.loop.execute {
                worker.beginDrain()
                stoppedAccepting.leave()
            }
        }
        // No worker polls the listening sockets any more: closing them now refuses new
        // connections at once instead of leaving them in the backlog until the drain ends.
        if stoppedAccepting.wait(timeout: .now() + .seconds(1)) == .success {
            closeListeners()
        }
        if drained.wait(timeout: .now() + .milliseconds(Int(settings.drainMs))) == .timedOut {
            for w in workers {
                nonisolated(unsafe) let worker = w
                w.loop.execute { worker.forceClose() }
            }
        }
        for t in threads { t.join() }
        threads.removeAll()
        closeListeners()
        // Every loop has ended: what they logged is written before the process exits.
        logs?.stop()
    }

    private func closeListeners() {
        dispatchPrecondition(condition: .onQueue(queue))
        for g in groups { g.close() }
        groups.removeAll()
    }

    /// Opens listeners for addresses not yet served and closes those no longer wanted; existing
    /// client connections continue. Throws (changing nothing) when a new address cannot be
    /// bound. Once draining, changes nothing: the listeners are closing for good.
    public func setListeners(_ addresses: [SocketAddress]) throws(SystemError) {
        try queue.sync { Result { () throws(SystemError) in try changeListeners(addresses) } }.get()
    }

    private func changeListeners(_ addresses: [SocketAddress]) throws(SystemError) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard !isDraining else { return }
        let served = Set(groups.map(\.key))
        var opened: [ListenerGroup] = []
        for a in addresses where !served.contains(a.description) {
            do {
                opened.append(try ListenerGroup.open(a, key: a.description, count: workers.count))
            } catch {
                for g in opened { g.close() }
                throw error
            }
        }
        let wanted = Set(addresses.map(\.description))
        let kept = groups.filter { wanted.contains($0.key) }
        let removed = groups.filter { !wanted.contains($0.key) }
        let next = kept + opened
        let group = DispatchGroup()
        for w in workers {
            nonisolated(unsafe) let worker = w
            let i = w.loop.index
            let gone = removed.map { $0.fds[i] }
            let adds = opened.enumerated().map { (fd: $0.element.fds[i], index: kept.count + $0.offset, key: $0.element.key) }
            let renumbered = kept.enumerated().map { (fd: $0.element.fds[i], index: $0.offset) }
            let apply: @Sendable () -> Void = {
                for fd in gone { worker.removeListener(fd: fd) }
                for r in renumbered { worker.renumberListener(fd: r.fd, index: r.index) }
                for a in adds { worker.addListener(fd: a.fd, index: a.index, key: a.key) }
            }
            // Before `start` no thread runs the loops, and none can start meanwhile (this queue).
            if threads.isEmpty {
                apply()
                continue
            }
            group.enter()
            w.loop.execute {
                apply()
                group.leave()
            }
        }
        group.wait()
        for g in removed { g.close() }
        groups = next
    }

    public func total(_ c: Counter) -> UInt64 { stats.reduce(0) { $0 + $1.load(c) } }

    /// The TLS servers of the listeners, by listening address (absent: plain). Connections
    /// accepted from now on use them; open ones keep the certificates they started with.
    public func setListenerTLS(_ byAddress: [String: TLSServer]) {
        queue.sync {
            for w in workers {
                nonisolated(unsafe) let worker = w
                if threads.isEmpty {
                    worker.setListenerTLS(byAddress)
                } else {
                    w.loop.execute { worker.setListenerTLS(byAddress) }
                }
            }
        }
    }
}
