// Starting the workers (one event loop thread each), sharing the listening sockets among them,
// and stopping gracefully: stop accepting, let in-flight requests finish, then exit.
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
    private var listenFds: [Int32] = []
    /// The configured address of each open listener (as written in the config), by index.
    private var listenerKeys: [String] = []
    /// The addresses actually bound (port 0 resolved), by listener index.
    public private(set) var boundAddresses: [SocketAddress] = []
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
                let fd = try openListener(a)
                listenFds.append(fd)
                listenerKeys.append(a.description)
                boundAddresses.append(Sys.localAddress(fd) ?? a)
            }
            for i in 0..<count {
                let w = try Worker(index: i, workerCount: count, settings: settings, store: store, stats: stats[i],
                                   counters: counters)
                for (li, fd) in listenFds.enumerated() {
                    let l = Listener(worker: w, fd: fd, index: li)
                    try l.start()
                    w.listeners.append(l)
                }
                workers.append(w)
            }
        } catch {
            for fd in listenFds { Sys.close(fd) }
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
            for fd in listenFds { Sys.close(fd) }
            listenFds.removeAll()
        }
        if drained.wait(timeout: .now() + .milliseconds(Int(settings.drainMs))) == .timedOut {
            for w in workers {
                nonisolated(unsafe) let worker = w
                w.loop.execute { worker.forceClose() }
            }
        }
        for t in threads { t.join() }
        threads.removeAll()
        for fd in listenFds { Sys.close(fd) }
        listenFds.removeAll()
    }

    /// Opens listeners for addresses not yet served and closes those no longer wanted; existing
    /// client connections continue. Throws (changing nothing) when a new address cannot be
    /// bound. Call from one control thread at a time.
    public func setListeners(_ addresses: [SocketAddress]) throws(SystemError) {
        let wanted = addresses.map(\.description)
        let current = listenerKeys
        var opened: [(key: String, fd: Int32, bound: SocketAddress)] = []
        for (a, key) in zip(addresses, wanted) where !current.contains(key) {
            do {
                let fd = try openListener(a)
                opened.append((key, fd, Sys.localAddress(fd) ?? a))
            } catch {
                for o in opened { Sys.close(o.fd) }
                throw error
            }
        }
        let removed = listenerKeys.enumerated().filter { !wanted.contains($0.element) }.map { listenFds[$0.offset] }
        let group = DispatchGroup()
        for w in workers {
            nonisolated(unsafe) let worker = w
            let adds = opened.map { ($0.fd, 0) }
            group.enter()
            w.loop.execute {
                for fd in removed { worker.removeListener(fd: fd) }
                for (fd, _) in adds { worker.addListener(fd: fd, index: 0) }
                group.leave()
            }
        }
        group.wait()
        for fd in removed { Sys.close(fd) }
        var keys: [String] = []
        var fds: [Int32] = []
        var bound: [SocketAddress] = []
        for (i, k) in listenerKeys.enumerated() where !removed.contains(listenFds[i]) {
            keys.append(k)
            fds.append(listenFds[i])
            bound.append(boundAddresses[i])
        }
        for o in opened {
            keys.append(o.key)
            fds.append(o.fd)
            bound.append(o.bound)
        }
        listenerKeys = keys
        listenFds = fds
        boundAddresses = bound
    }

    public func total(_ c: Counter) -> UInt64 { stats.reduce(0) { $0 + $1.load(c) } }
}
