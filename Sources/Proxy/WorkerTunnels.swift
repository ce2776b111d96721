// Long-lived exchanges after a blue/green flip: each loop counts the tunnels (after a 101) and
// the responses still being relayed by the pool they started on, in its own slots, and when a
// flip leaves a color idle with `drainTunnelsMs` set, closes what is left on that color at a
// steady pace, earliest-started first, so the last one is gone by the deadline and the clients
// do not all reconnect at the same instant.
import Reactor
import Routing

/// What a client connection is counted as, and on which pool series.
struct LongLivedMark {
    /// The pool series it is counted on; -1: not counted.
    var series: Int32 = -1
    /// 0 a tunnel, 1 a response in progress (the slot in `WorkerMetrics.longLived`).
    var slot = 0
    /// When it was counted (loop milliseconds): the order in which a drain closes.
    var since: UInt64 = 0
}

extension Worker {
    /// The response head went to the client: a tunnel, or a response whose body is on its way.
    @inline(__always)
    func countLongLived(_ c: ClientConnection, pool: Int32, tunnel: Bool) {
        guard pool >= 0 else { return }
        uncountLongLived(c)
        c.longLived = LongLivedMark(series: pool, slot: tunnel ? 0 : 1, since: loop.now)
        metrics.longLived.add(Int(pool), c.longLived.slot)
        if drainer.isActive { drainer.joined(c) }
    }

    /// The exchange ended (or the connection closed).
    @inline(__always)
    func uncountLongLived(_ c: ClientConnection) {
        let mark = c.longLived
        guard mark.series >= 0 else { return }
        c.longLived.series = -1
        metrics.longLived.sub(Int(mark.series), mark.slot)
    }

    /// A new snapshot was adopted: a blue/green upstream whose live color changed starts a drain
    /// of the color it left (when it has `drainTunnelsMs`), and a color that is live again is no
    /// longer drained.
    func noteFlips(from old: Snapshot) {
        guard old !== snapshot else { return }
        var before: [String: Color] = [:]
        for u in old.upstreams {
            if case .blueGreen(let bg) = u.kind { before[u.name] = bg.live }
        }
        for (i, u) in snapshot.upstreams.enumerated() {
            guard case .blueGreen(let bg) = u.kind else { continue }
            if drainer.isActive { drainer.cancel(series: series.pool(upstream: i, color: bg.live)) }
            guard let was = before[u.name], was != bg.live, bg.drainTunnelsMs > 0 else { continue }
            let left = series.pool(upstream: i, color: was)
            if left >= 0 { drainer.start(series: left, windowMs: bg.drainTunnelsMs) }
        }
    }
}

extension ClientConnection {
    /// Closed by a drain: a tunnel ends cleanly both ways (FIN to the upstream and, once what is
    /// buffered for it is written, to the client); a response cut short ends like any other.
    func closeForDrain() {
        worker.uncountLongLived(self)
        guard phase == .tunnel else {
            abort()
            return
        }
        tunnelClosed()
        if isOpen { loop.setDeadline(self, afterMs: min(worker.settings.idleMs, 5_000)) }
    }
}

/// One loop's drains in progress: per drained pool series, its connections in the order they
/// started, how far the closes have come, and the deadline. With R left and L ms to the
/// deadline, closes come every L / (R + 1) ms: spread evenly over the window, and a connection
/// that joins late (its exchange was decided before the flip) shortens the steps. The loop's
/// timer ticks every few milliseconds, so a step shorter than a tick closes several at once.
final class TunnelDrainer: Pollable {
    private struct Drain {
        var series: Int32
        var deadline: UInt64
        var next: UInt64
        /// In the order they started; those before `closed` are done (closed, or gone by themselves).
        var connections: [ClientConnection]
        var closed = 0
        /// The version of the snapshot that left the color idle: exchanges decided under it or
        /// later went to that color on purpose (a preview, a variant of the idle color).
        var flippedAt: UInt64
    }

    private unowned(unsafe) let worker: Worker
    private var drains: [Drain] = []

    init(worker: Worker) {
        self.worker = worker
        super.init(loop: worker.loop)
    }

    var isActive: Bool { !drains.isEmpty }

    func start(series: Int32, windowMs: UInt64) {
        cancel(series: series)
        let now = loop.now
        let open = worker.clients.filter { $0.longLived.series == series }.sorted { $0.longLived.since < $1.longLived.since }
        let deadline = now &+ windowMs
        drains.append(Drain(series: series, deadline: deadline, next: now &+ windowMs / UInt64(open.count + 1), connections: open,
                            flippedAt: worker.snapshot.version))
        arm()
    }

    func cancel(series: Int32) {
        drains.removeAll { $0.series == series }
    }

    /// A connection was counted while drains run: it joins the drain of its pool, if its exchange
    /// was decided before the flip.
    func joined(_ c: ClientConnection) {
        guard let decided = c.snapshot?.version else { return }
        for i in drains.indices where drains[i].series == c.longLived.series && decided < drains[i].flippedAt {
            drains[i].connections.append(c)
        }
    }

    /// The loop's timer granularity: closes due within one tick go together.
    static let tickMs: UInt64 = 10

    override func timerFired(now: UInt64) {
        var i = 0
        while i < drains.count {
            let series = drains[i].series
            if now >= drains[i].deadline {
                let rest = drains[i].connections[drains[i].closed...]
                drains.remove(at: i)
                for c in rest where c.isOpen && c.longLived.series == series { c.closeForDrain() }
                continue
            }
            if now >= drains[i].next {
                let remaining = drains[i].deadline - now
                let left = UInt64(drains[i].connections.count - drains[i].closed)
                // As many as the even spacing puts within one tick (at least one).
                var due = max(1, (left + 1) * Self.tickMs / max(remaining, 1))
                while due > 0 && drains[i].closed < drains[i].connections.count {
                    let c = drains[i].connections[drains[i].closed]
                    drains[i].closed += 1
                    // One that ended by itself (or is counted elsewhere now) is passed over.
                    guard c.isOpen && c.longLived.series == series else { continue }
                    c.closeForDrain()
                    due -= 1
                }
                let after = UInt64(drains[i].connections.count - drains[i].closed)
                // None left: one last look at the deadline, for connections that join late.
                drains[i].next = after == 0 ? drains[i].deadline : now &+ max(Self.tickMs, remaining / (after + 1))
            }
            i += 1
        }
        arm()
    }

    private func arm() {
        var earliest: UInt64?
        for d in drains where earliest.map({ d.next < $0 }) ?? true { earliest = d.next }
        guard let next = earliest else {
            loop.cancelDeadline(self)
            return
        }
        let now = loop.now
        loop.setDeadline(self, afterMs: next > now ? next - now : 0)
    }
}
