// Active health checks: one checker per endpoint address for the whole process (not one per
// event loop), each an ordinary HTTP client on the loop the endpoint id maps to, like the
// warm-up client: every intervalMs a GET on its own connection, answered within timeoutMs with
// an expected status or counted as failed. `unhealthyAfter` failures in a row take the endpoint
// out of every pool it is in; `healthyAfter` passes bring it back.
import Glibc
import HTTP1
import Reactor
import Routing
import Synchronization

final class HealthChecker: Pollable {
    private enum Phase { case waiting, connecting, exchanging, stopped }

    private unowned(unsafe) let worker: Worker
    let endpointID: Int
    private let address: SocketAddress
    private(set) var check: HealthCheck
    private var request: [UInt8] = []
    private var phase = Phase.waiting
    private var transport = Transport()
    private var sent = 0
    private var inBuf = ByteBuffer()
    private var framer: ResponseFramer
    private var status = 0
    /// Verdict and the run of results that agree against it.
    private var healthy = true
    private var passes = 0
    private var failures = 0

    init(worker: Worker, endpointID: Int, address: SocketAddress, check: HealthCheck, host: String) {
        self.worker = worker
        self.endpointID = endpointID
        self.address = address
        self.check = check
        self.framer = ResponseFramer(limits: worker.settings.limits)
        super.init(loop: worker.loop)
        setRequest(host: host)
    }

    private func setRequest(host: String) {
        request = Array("GET \(check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: switchyard-health\r\nConnection: close\r\n\r\n".utf8)
    }

    /// The first check runs at once. On the checker's loop.
    func start() {
        phase = .waiting
        loop.setDeadline(self, afterMs: 0)
    }

    /// New settings from a reload; the verdict and the current run of results carry over.
    func update(check: HealthCheck, host: String) {
        let interval = check.intervalMs != self.check.intervalMs
        self.check = check
        setRequest(host: host)
        if interval && phase == .waiting { loop.setDeadline(self, afterMs: UInt64(check.intervalMs)) }
    }

    /// The endpoint is no longer checked: its check verdict stops counting.
    func stop() {
        closeConnection()
        phase = .stopped
        loop.cancelDeadline(self)
        worker.health.forgetCheck(endpointID)
    }

    override func timerFired(now: UInt64) {
        switch phase {
        case .waiting: begin()
        case .connecting, .exchanging: finished(passed: false)
        case .stopped: break
        }
    }

    private func begin() {
        sent = 0
        status = 0
        framer.reset(requestMethod: .get)
        loop.setDeadline(self, afterMs: UInt64(check.timeoutMs))
        do {
            let (t, connected) = try Dialer.open(self, to: address)
            transport = t
            phase = connected ? .exchanging : .connecting
            if connected { send() }
        } catch {
            finished(passed: false)
        }
    }

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        if phase == .connecting {
            guard events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 else { return }
            if Dialer.connectError(transport) != nil { return finished(passed: false) }
            phase = .exchanging
        }
        guard phase == .exchanging else { return }
        if transport.canWrite && sent < request.count { send() }
        if phase == .exchanging && fd >= 0 && transport.canRead { receive() }
    }

    private func send() {
        while sent < request.count && transport.canWrite {
            let result = request.withUnsafeBytes { raw in
                Result { () throws(SystemError) -> IOResult in try transport.write(raw.baseAddress! + sent, raw.count - sent, nil, 0) }
            }
            switch result {
            case .failure: return finished(passed: false)
            case .success(.done(let n)): sent += n
            case .success(.wouldBlock): return
            }
        }
    }

    private func receive() {
        while phase == .exchanging && fd >= 0 && transport.canRead {
            let space = inBuf.roomToRead(capacity: worker.buffers.blockSize, pool: worker.buffers)
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch { return finished(passed: false) }
            switch r {
            case .wouldBlock: return
            case .done(0): return finished(passed: status > 0 && check.passes(status))
            case .done:
                // The status decides; the body is not waited for.
                while !inBuf.isEmpty {
                    switch framer.feed(inBuf.readableBytes) {
                    case .needMore: return
                    case .failed: return finished(passed: false)
                    case .interim(let length): inBuf.consume(length)
                    case .head:
                        status = framer.head.status
                        return finished(passed: check.passes(status))
                    case .body: return
                    }
                }
            }
        }
    }

    private func finished(passed: Bool) {
        closeConnection()
        guard phase != .stopped else { return }
        worker.health.countCheck(endpointID, passed: passed)
        if passed {
            passes += 1
            failures = 0
            if !healthy && passes >= check.healthyAfter {
                healthy = true
                worker.health.setChecked(endpointID, healthy: true)
            } else if healthy {
                worker.health.checkPassed(endpointID)
            }
        } else {
            failures += 1
            passes = 0
            if healthy && failures >= check.unhealthyAfter {
                healthy = false
                worker.health.setChecked(endpointID, healthy: false)
            }
        }
        phase = .waiting
        loop.setDeadline(self, afterMs: UInt64(check.intervalMs))
    }

    private func closeConnection() {
        if fd >= 0 {
            loop.close(self)
            transport.closed()
        }
        inBuf.release(to: worker.buffers)
    }
}

/// Keeps exactly one checker per checked endpoint address as snapshots change: started on the
/// loop the endpoint id maps to, updated when its check changes, stopped when no pool checks it.
final class HealthSupervisor: @unchecked Sendable {
    private struct Running {
        let checker: HealthChecker
        let check: HealthCheck
        let host: String
        let address: SocketAddress
    }

    private let workers: [Worker]
    private let running = Mutex<[Int: Running]>([:])

    init(workers: [Worker]) {
        self.workers = workers
    }

    /// The checks a snapshot asks for, by endpoint id: an address in several pools is checked
    /// once, with the check of the first upstream (in name order) that checks it.
    static func wanted(_ snapshot: Snapshot) -> [Int: (address: SocketAddress, host: String, check: HealthCheck)] {
        var out: [Int: (address: SocketAddress, host: String, check: HealthCheck)] = [:]
        for u in snapshot.upstreams {
            let pools: [(Color?, Pool)]
            switch u.kind {
            case .pool(let p): pools = [(nil, p)]
            case .blueGreen(let bg): pools = [(.blue, bg.blue), (.green, bg.green)]
            }
            for (color, pool) in pools {
                guard let check = u.policy.healthCheck(color) else { continue }
                for e in pool.endpoints where out[e.id] == nil {
                    guard let a = SocketAddress(host: e.host, port: e.port) else { continue }
                    out[e.id] = (a, check.hostHeader ?? e.address, check)
                }
            }
        }
        return out
    }

    /// Starts, updates and stops checkers to match `snapshot`.
    func update(_ snapshot: Snapshot) {
        let want = Self.wanted(snapshot)
        running.withLock { running in
            for (id, r) in running where want[id] == nil || want[id]!.address.description != r.address.description {
                nonisolated(unsafe) let checker = r.checker
                checker.loop.execute { checker.stop() }
                running[id] = nil
            }
            for (id, w) in want {
                if let r = running[id] {
                    guard r.check != w.check || r.host != w.host else { continue }
                    nonisolated(unsafe) let checker = r.checker
                    let (check, host) = (w.check, w.host)
                    checker.loop.execute { checker.update(check: check, host: host) }
                    running[id] = Running(checker: r.checker, check: w.check, host: w.host, address: r.address)
                    continue
                }
                let worker = workers[id % workers.count]
                let checker = HealthChecker(worker: worker, endpointID: id, address: w.address, check: w.check, host: w.host)
                nonisolated(unsafe) let c = checker
                worker.loop.execute { c.start() }
                running[id] = Running(checker: checker, check: w.check, host: w.host, address: w.address)
            }
        }
    }

    /// Endpoint ids checked now.
    var checkedEndpoints: Set<Int> { running.withLock { Set($0.keys) } }
}
