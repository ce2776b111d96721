// One event loop's side of shadow copies: each shadow upstream's gate (this loop's share of its
// limits), handing copies to connections of the one keep-alive pool, writing them after each
// batch of events, and which shadow endpoints this loop has found refusing.
import Reactor
import Routing

/// A shadow endpoint this loop saw refuse a connect (or reset a connection of its own). While
/// it is down no copy is dialled to it; it is known back when a health check passes after the
/// mark, or when one of the probes this loop makes (a connect, at most one per
/// `Worker.shadowProbeMs`, only while copies for it keep coming) completes. Back, it takes
/// every copy at once: no lingering penalty (a refusal used to hold copies back for a second
/// at a time, and each copy sent again meanwhile pushed that second further).
struct ShadowMark {
    var down = false
    /// The endpoint's passed health checks when it was marked: one more means it answers.
    var checksPassed: UInt64 = 0
    /// When a probe may next be made (monotonic ms).
    var probeAt: UInt64 = 0
}

extension Worker {
    /// How often, at most, a shadow endpoint marked down is probed by a connect.
    static let shadowProbeMs: UInt64 = 500

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

    /// Whether copies may be dialled to `e`: not marked down by this loop, or known back since.
    /// A refusal marked it: a probe is made when one is due.
    func mirrorEndpointUp(_ e: Endpoint) -> Bool {
        let id = e.id
        guard id >= 0 && id < shadowMarks.count else { return false }
        guard shadowMarks[id].down else { return true }
        if health.checks(endpoint: id, passed: true) > shadowMarks[id].checksPassed {
            shadowMarks[id].down = false
            return true
        }
        if loop.now >= shadowMarks[id].probeAt { probeShadow(e) }
        return false
    }

    /// A connect with nothing to send: connected, it clears the mark and waits in the pool for
    /// the next copy (UpstreamConnection.probeConnected); refused, the endpoint stays down.
    private func probeShadow(_ e: Endpoint) {
        shadowMarks[e.id].probeAt = loop.now + Worker.shadowProbeMs
        guard let addr = address(for: e),
              let probe = UpstreamConnection.connect(worker: self, target: UpstreamTarget(endpoint: e.id, address: addr)) else {
            stats.add(.upstreamConnectFailures)
            mirrorEndpointFailed(e.id)
            return
        }
        if probe.isActive { probe.probeConnected() }
    }

    /// Hands a copy to an idle pooled connection to its endpoint, or to a new one: one copy per
    /// connection at a time, so a slow shadow gets as many copies in flight as its
    /// `maxInFlight` allows (the gate bounds the connections), never a queue behind one answer.
    func dispatchCopy(_ c: MirrorCopy) {
        guard !draining, mirrorEndpointUp(c.endpoint) else { return c.finish(.mirrorsFailed) }
        guard let conn = acquireUpstream(c.endpoint) else {
            stats.add(.upstreamConnectFailures)
            mirrorEndpointFailed(c.endpoint.id)
            return c.finish(.mirrorsFailed)
        }
        conn.attach(c)
    }

    /// A connect to a shadow endpoint failed or timed out: no copy is dialled to it from this
    /// loop until it is known back, and the failure counts against it like any other.
    func mirrorEndpointFailed(_ id: Int) {
        markShadowDown(id)
        mirrorEndpointFailedPassively(id)
    }

    func markShadowDown(_ id: Int) {
        guard id >= 0 && id < shadowMarks.count else { return }
        shadowMarks[id].down = true
        shadowMarks[id].checksPassed = health.checks(endpoint: id, passed: true)
        shadowMarks[id].probeAt = max(shadowMarks[id].probeAt, loop.now + Worker.shadowProbeMs)
    }

    /// A connection to the endpoint completed: it is back for this loop's copies.
    func shadowEndpointReachable(_ id: Int) {
        if id >= 0 && id < shadowMarks.count && shadowMarks[id].down { shadowMarks[id].down = false }
    }

    /// After each batch of events: each copy with new bytes is written once.
    func flushMirrors() {
        guard !mirrorDirty.isEmpty else { return }
        swap(&mirrorDirty, &mirrorFlushing)
        for c in mirrorFlushing {
            c.dirty = false
            c.connection?.sendCopy(c)
        }
        mirrorFlushing.removeAll(keepingCapacity: true)
    }
}
