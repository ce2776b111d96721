// Accepting client connections on a listening socket that every worker shares.
import Glibc
import Reactor

final class Listener: Pollable {
    unowned(unsafe) let worker: Worker
    let listenFd: Int32
    let index: Int

    init(worker: Worker, fd: Int32, index: Int) {
        self.worker = worker
        self.listenFd = fd
        self.index = index
        super.init(loop: worker.loop)
    }

    func start() throws(SystemError) {
        try loop.registerListener(self, fd: listenFd)
    }

    func stop() {
        loop.unregister(self)
    }

    override func handleEvents(_ events: UInt32) {
        // Bounded so one busy listener cannot starve the connections already accepted.
        for _ in 0..<64 {
            let fd: Int32?
            do { fd = try Sys.accept(listenFd) } catch {
                // EMFILE/ENFILE and friends: the connection stays queued; try on the next wake.
                return
            }
            guard let cfd = fd else { return }
            if worker.clients.count >= worker.maxClients || worker.draining {
                worker.stats.add(.connectionsRejected)
                Sys.close(cfd)
                continue
            }
            Sys.setNoDelay(cfd)
            let c = ClientConnection(worker: worker, listener: index)
            do {
                try loop.register(c, fd: cfd)
            } catch {
                Sys.close(cfd)
                continue
            }
            worker.stats.add(.connectionsAccepted)
            worker.add(c)
            c.start()
        }
    }
}

/// Opens a listening socket (done once, before workers start, so "address in use" is reported
/// at start-up as one clear line).
public func openListener(_ address: SocketAddress, backlog: Int32 = 4096) throws(SystemError) -> Int32 {
    let fd = try Sys.socket(family: address.family)
    Sys.setReuse(fd, port: false)
    if address.family == AF_INET6 {
        var zero: Int32 = 0
        _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
    }
    do {
        try Sys.bind(fd, address)
        try Sys.listen(fd, backlog: backlog)
    } catch {
        Sys.close(fd)
        throw error
    }
    return fd
}
