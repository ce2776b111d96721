// Active health checks: one checker per endpoint for the whole process (not one per event
// loop), on the loop the endpoint id maps to: every intervalMs a GET on its own connection,
// made by the one upstream client (UpstreamProbe through Worker.dial: TLS with the endpoint's
// policy, verified like its requests, resuming its sessions), answered within timeoutMs with an
// expected status or counted as failed, with the reason kept for `show upstreams` and the log. `unhealthyAfter` failures in a row take the endpoint
// out of every pool it is in; `healthyAfter` passes bring it back.
import Glibc
import HTTP1
import Reactor
import Routing
import Synchronization

final class HealthChecker: Pollable {
    private unowned(unsafe) let worker: Worker
    let endpointID: Int
    private let address: SocketAddress
    private(set) var check: HealthCheck
    private var request: [UInt8] = []
    /// The pool's token, read at each check: a renewed one reaches the next check.
    private var bearer: UpstreamBearer?
    /// The pool's SigV4 signing: each check is signed when it is sent.
    private var signing: UpstreamSigning?
    /// The check in flight; nil while waiting for the next.
    private var probe: UpstreamProbe?
    private var stopped = false
    /// Verdict and the run of results that agree against it.
    private var healthy = true
    private var passes = 0
    private var failures = 0

    init(worker: Worker, endpointID: Int, address: SocketAddress, check: HealthCheck, head: CheckHead) {
        self.worker = worker
        self.endpointID = endpointID
        self.address = address
        self.check = check
        super.init(loop: worker.loop)
        setRequest(head)
    }

    private func setRequest(_ head: CheckHead) {
        request = UpstreamProbe.get(path: check.path, host: head.host, userAgent: "switchyard-health", extra: head.setHeaders)
        bearer = head.bearer
        signing = head.signing
    }

    /// The first check runs at once. On the checker's loop.
    func start() {
        stopped = false
        loop.setDeadline(self, afterMs: 0)
    }

    /// New settings from a reload; the verdict and the current run of results carry over.
    func update(check: HealthCheck, head: CheckHead) {
        let interval = check.intervalMs != self.check.intervalMs
        self.check = check
        setRequest(head)
        if interval && probe == nil { loop.setDeadline(self, afterMs: UInt64(clamping: check.intervalMs)) }
    }

    /// The endpoint is no longer checked: its check verdict stops counting.
    func stop() {
        probe?.cancel()
        probe = nil
        stopped = true
        loop.cancelDeadline(self)
        worker.health.forgetCheck(endpointID)
    }

    override func timerFired(now: UInt64) {
        guard !stopped, probe == nil else { return }
        // The endpoint's TLS (context, name, sessions) as of the newest snapshot.
        worker.adoptSnapshot()
        let request = worker.authorized(self.request, bearer: bearer, signing: signing)
        let p = UpstreamProbe(worker: worker, target: UpstreamTarget(endpoint: endpointID, address: address), request: request,
                              timeoutMs: check.timeoutMs, wholeBody: false) { [unowned(unsafe) self] outcome in
            self.finished(outcome)
        }
        probe = p
        p.start()
    }

    private func finished(_ outcome: UpstreamProbe.Outcome) {
        probe = nil
        guard !stopped else { return }
        let failure: String?
        switch outcome {
        case .answered(let status): failure = check.passes(status) ? nil : "answered \(status)"
        case .failed(let why): failure = why
        }
        worker.health.countCheck(endpointID, passed: failure == nil)
        if let failure {
            failures += 1
            passes = 0
            worker.health.noteCheckFailure(endpointID, failure)
            if healthy && failures >= check.unhealthyAfter {
                healthy = false
                worker.health.setChecked(endpointID, healthy: false)
                worker.events.write(kind: "health \(endpointID)",
                                    "endpoint \(address) is unhealthy: \(failures) health checks failed in a row, the last: \(failure)")
            }
        } else {
            passes += 1
            failures = 0
            worker.health.noteCheckFailure(endpointID, nil)
            if !healthy && passes >= check.healthyAfter {
                healthy = true
                worker.health.setChecked(endpointID, healthy: true)
                worker.events.write(kind: "health \(endpointID)", "endpoint \(address) is healthy again: \(passes) health checks passed")
            } else if healthy {
                worker.health.checkPassed(endpointID)
            }
        }
        loop.setDeadline(self, afterMs: UInt64(clamping: check.intervalMs))
    }
}

/// What a check's request carries besides its path: the Host, and the fields the pool sets on
/// every request (`setHeaders`: a locked function answers 401 to a check without its key), and
/// the pool's bearer token (`auth.google`) or SigV4 signing (`auth.aws`), put on each check
/// as it is sent.
struct CheckHead: Equatable {
    var host: String
    var setHeaders: [UInt8]
    var bearer: UpstreamBearer? = nil
    var signing: UpstreamSigning? = nil

    static func == (a: CheckHead, b: CheckHead) -> Bool {
        a.host == b.host && a.setHeaders == b.setHeaders && a.bearer === b.bearer && a.signing === b.signing
    }
}

/// Keeps exactly one checker per checked endpoint address as snapshots change: started on the
/// loop the endpoint id maps to, updated when its check changes, stopped when no pool checks it.
final class HealthSupervisor: @unchecked Sendable {
    private struct Running {
        let checker: HealthChecker
        let check: HealthCheck
        let head: CheckHead
        let address: SocketAddress
    }

    private let workers: [Worker]
    private let running = Mutex<[Int: Running]>([:])

    init(workers: [Worker]) {
        self.workers = workers
    }

    /// The checks a snapshot asks for, by endpoint id: an address in several pools is checked
    /// once, with the check of the first upstream (in name order) that checks it.
    static func wanted(_ snapshot: Snapshot, _ security: UpstreamSecurity) -> [Int: (address: SocketAddress, head: CheckHead, check: HealthCheck)] {
        var out: [Int: (address: SocketAddress, head: CheckHead, check: HealthCheck)] = [:]
        for u in snapshot.upstreams {
            let pools: [(Color?, Pool)]
            switch u.kind {
            case .pool(let p): pools = [(nil, p)]
            case .blueGreen(let bg): pools = [(.blue, bg.blue), (.green, bg.green)]
            }
            for (color, pool) in pools {
                guard let check = u.policy.healthCheck(color) else { continue }
                let setHeaders = pool.setHeaders.flatMap(\.line)
                let key = UpstreamSecurity.key(upstream: u.name, color: color?.name)
                let bearer = security.bearer[key]
                let signing = security.signing[key]
                for e in pool.endpoints where out[e.id] == nil {
                    guard let a = SocketAddress(host: e.host, port: e.port) else { continue }
                    out[e.id] = (a, CheckHead(host: check.hostHeader ?? e.address, setHeaders: setHeaders, bearer: bearer,
                                                    signing: signing), check)
                }
            }
        }
        return out
    }

    /// Starts, updates and stops checkers to match `snapshot`.
    func update(_ snapshot: Snapshot, security: UpstreamSecurity) {
        let want = Self.wanted(snapshot, security)
        running.withLock { running in
            for (id, r) in running where want[id] == nil || want[id]!.address.description != r.address.description {
                nonisolated(unsafe) let checker = r.checker
                checker.loop.execute { checker.stop() }
                running[id] = nil
            }
            for (id, w) in want {
                if let r = running[id] {
                    guard r.check != w.check || r.head != w.head else { continue }
                    nonisolated(unsafe) let checker = r.checker
                    let (check, head) = (w.check, w.head)
                    checker.loop.execute { checker.update(check: check, head: head) }
                    running[id] = Running(checker: r.checker, check: w.check, head: w.head, address: r.address)
                    continue
                }
                let worker = workers[id % workers.count]
                let checker = HealthChecker(worker: worker, endpointID: id, address: w.address, check: w.check, head: w.head)
                nonisolated(unsafe) let c = checker
                worker.loop.execute { c.start() }
                running[id] = Running(checker: checker, check: w.check, head: w.head, address: w.address)
            }
        }
    }

    /// Endpoint ids checked now.
    var checkedEndpoints: Set<Int> { running.withLock { Set($0.keys) } }
}
