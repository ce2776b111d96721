// Starting the workers (one event loop thread each, each with its own socket for every
// listening address), and stopping gracefully: stop accepting, let in-flight requests finish,
// then exit.
import Dispatch
import Glibc
import Reactor
import Routing
import Synchronization

public final class ProxyServer: @unchecked Sendable {
    public let settings: ProxySettings
    public let store: SnapshotStore
    public let stats: [WorkerStats]
    public let counters = TrafficCounters()
    private var workers: [Worker] = []
    private var threads: [LoopThread] = []
    /// The open listening addresses: config order at start, addresses added by a reload last.
    private var groups: [ListenerGroup] = []
    /// The addresses actually bound (port 0 resolved), by listener index.
    public var boundAddresses: [SocketAddress] { groups.map(\.bound) }
    private let drained = DispatchGroup()
    private let stopping = Atomic<Bool>(false)

    /// Opens the listeners (errors here are start-up errors) and builds the workers.
    public init(settings: ProxySettings, snapshot: Snapshot) throws(SystemError) {
        self.settings = settings
        self.store = SnapshotStore(snapshot)
        let count = settings.workers > 0 ? settings.workers : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        stats = (0..<count).map { _ in WorkerStats() }
        do {
            for a in settings.listeners {
                groups.append(try ListenerGroup.open(a, key: a.description, count: count))
            }
            for i in 0..<count {
                let w = try Worker(index: i, workerCount: count, settings: settings, store: store, stats: stats[i],
                                   counters: counters)
                for (li, g) in groups.enumerated() {
                    let l = Listener(worker: w, fd: g.fds[i], index: li)
                    try l.start()
                    w.listeners.append(l)
                }
                workers.append(w)
            }
        } catch {
            for g in groups { g.close() }
            throw error
        }
    }

    public var workerCount: Int { workers.count }

    /// Starts one thread per worker.
    public func start() {
        for w in workers {
            drained.enter()
            let group = drained
            w.onDrained = { group.leave() }
            nonisolated(unsafe) let worker = w
            threads.append(LoopThread.start { worker.loop.run() })
        }
    }

    /// Publishes a new routing snapshot to every worker.
    public func publish(_ snapshot: Snapshot) {
        store.publish(snapshot)
        for w in workers {
            nonisolated(unsafe) let worker = w
            w.loop.execute { worker.adoptSnapshot() }
        }
    }

    /// The snapshot requests route on now.
    public var snapshot: Snapshot { store.snapshot }

    /// Stops accepting, lets in-flight exchanges finish within `drainMs`, then closes what is
    /// left. Blocks until every worker thread has ended.
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
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
    }

    private func closeListeners() {
        for g in groups { g.close() }
        groups.removeAll()
    }

    /// Opens listeners for addresses not yet served and closes those no longer wanted; existing
    /// client connections continue. Throws (changing nothing) when a new address cannot be
    /// bound. Call from one control thread at a time.
    public func setListeners(_ addresses: [SocketAddress]) throws(SystemError) {
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
            let adds = opened.enumerated().map { (fd: $0.element.fds[i], index: kept.count + $0.offset) }
            let renumbered = kept.enumerated().map { (fd: $0.element.fds[i], index: $0.offset) }
            group.enter()
            w.loop.execute {
                for fd in gone { worker.removeListener(fd: fd) }
                for r in renumbered { worker.renumberListener(fd: r.fd, index: r.index) }
                for a in adds { worker.addListener(fd: a.fd, index: a.index) }
                group.leave()
            }
        }
        group.wait()
        for g in removed { g.close() }
        groups = next
    }

    public func total(_ c: Counter) -> UInt64 { stats.reduce(0) { $0 + $1.load(c) } }
}
