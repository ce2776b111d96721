// Accepting client connections: each worker has its own listening socket for every address,
// the sockets of one address forming a SO_REUSEPORT group.
import Glibc
import Reactor
import TLS

final class Listener: Pollable {
    unowned(unsafe) let worker: Worker
    let listenFd: Int32
    /// Position of its address among the configured listeners (which may change on reload).
    var index: Int
    /// Its listening address (`SocketAddress.description`), by which its TLS is found.
    let key: String
    /// Set for a TLS listener: the certificates new connections are offered.
    var tls: TLSServer?

    init(worker: Worker, fd: Int32, index: Int, key: String) {
        self.worker = worker
        self.listenFd = fd
        self.index = index
        self.key = key
        super.init(loop: worker.loop)
    }

    private var stopped = false
    /// How long accepting rests when the process or system is out of descriptors (or memory).
    static let pauseMs: UInt64 = 100

    func start() throws(SystemError) {
        try loop.registerListener(self, fd: listenFd)
    }

    func stop() {
        stopped = true
        loop.cancelDeadline(self)
        loop.unregister(self)
    }

    override func handleEvents(_ events: UInt32) {
        // Bounded so one busy listener cannot starve the connections already accepted.
        for _ in 0..<64 {
            let fd: Int32?
            do { fd = try Sys.accept(listenFd) } catch {
                pauseIfExhausted(error)
                return
            }
            guard let cfd = fd else { return }
            if worker.clients.count >= worker.maxClients || worker.draining {
                worker.stats.add(.connectionsRejected)
                Sys.close(cfd)
                continue
            }
            Sys.setNoDelay(cfd)
            let c = ClientConnection(worker: worker, listener: index, tls: tls)
            do {
                try loop.register(c, fd: cfd)
            } catch {
                Sys.close(cfd)
                continue
            }
            worker.stats.add(.connectionsAccepted)
            worker.add(c)
            c.start(fd: cfd)
        }
    }

    /// Out of descriptors (EMFILE, ENFILE) or kernel memory, the connection stays queued and the
    /// level-triggered listener would wake the loop again at once: a core spent on failing
    /// accepts. Accepting rests instead, and a timer resumes it (nginx does the same).
    private func pauseIfExhausted(_ error: SystemError) {
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            worker.stats.add(.acceptPauses)
            loop.unregister(self)
            loop.setDeadline(self, afterMs: Listener.pauseMs)
        default:
            break
        }
    }

    override func timerFired(now: UInt64) {
        guard !stopped, fd < 0 else { return }
        try? loop.registerListener(self, fd: listenFd)
    }
}

/// One configured listening address: a socket per worker, bound together with SO_REUSEPORT so
/// the kernel spreads new connections evenly over the workers. (One socket shared by every
/// loop with EPOLLEXCLUSIVE woke the most recent waiter, so connections arriving together
/// landed on one worker: all 100 keep-alive clients in one run of Benchmarks/workers.sh, 39 or
/// 40 of 40 in ListenerTests.)
struct ListenerGroup {
    let key: String
    let bound: SocketAddress
    /// By worker index.
    let fds: [Int32]

    /// Binds `count` sockets to `address` (port 0: one port chosen for all). Opened before the
    /// workers start or change, so "address in use" is one clear error.
    static func open(_ address: SocketAddress, key: String, count: Int, backlog: Int32 = 4096) throws(SystemError) -> ListenerGroup {
        // A group joins any other SO_REUSEPORT group of the same user on the port, another
        // Switchyard included, and would silently share its traffic. A plain bind first fails
        // when anything holds the address, and resolves port 0.
        let probe = try Sys.socket(family: address.family)
        Sys.setReuse(probe, port: false)
        setDualStack(probe, address)
        let target: SocketAddress
        do {
            try Sys.bind(probe, address)
            target = Sys.localAddress(probe) ?? address
        } catch {
            Sys.close(probe)
            throw error
        }
        Sys.close(probe)

        var fds: [Int32] = []
        do {
            for _ in 0..<count {
                let fd = try Sys.socket(family: address.family)
                fds.append(fd)
                Sys.setReuse(fd, port: true)
                setDualStack(fd, address)
                try Sys.bind(fd, target)
                try Sys.listen(fd, backlog: backlog)
            }
        } catch {
            for fd in fds { Sys.close(fd) }
            throw error
        }
        return ListenerGroup(key: key, bound: Sys.localAddress(fds[0]) ?? target, fds: fds)
    }

    func close() {
        for fd in fds { Sys.close(fd) }
    }

    private static func setDualStack(_ fd: Int32, _ address: SocketAddress) {
        guard address.family == AF_INET6 else { return }
        var zero: Int32 = 0
        _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
    }
}
