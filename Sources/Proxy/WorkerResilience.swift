// One event loop's side of health, ejection, retries and limits: which endpoint of a pool may
// take a request now (healthy, not ejected, under maxConnections), requests waiting for a slot,
// the retry budget, and the counters. Everything here is touched by its own loop only; the
// shared part is the HealthBoard's per-endpoint verdicts.
import Reactor
import Routing

/// A request waiting for a connection slot of its upstream.
struct PendingRequest {
    unowned(unsafe) let client: ClientConnection
    let upstream: Int
    let color: Color?
}

/// Retries spent against requests seen, per upstream, halved every window so the budget
/// follows recent traffic.
struct RetryBudget {
    static let windowMs: UInt64 = 10_000
    var windowEnd: UInt64 = 0
    var requests = 0
    var retries = 0

    mutating func roll(now: UInt64) {
        if now < windowEnd { return }
        let windows = windowEnd == 0 ? 1 : 1 + (now - windowEnd) / Self.windowMs
        requests >>= min(Int(windows), 62)
        retries >>= min(Int(windows), 62)
        windowEnd = now + Self.windowMs
    }
}

final class WorkerResilience {
    let stats: ResilienceStats
    let slots: ResilienceSlots
    /// By upstream index of the current snapshot.
    private(set) var upstreamSlot: [Int] = []
    private(set) var policies: [UpstreamPolicy] = []
    /// This loop's share of each upstream's maxConnections and maxPending (0: unlimited / none).
    private(set) var connectionShare: [Int] = []
    private(set) var pendingShare: [Int] = []
    var pendingCount: [Int] = []
    var budgets: [RetryBudget] = []
    /// Exchanges in progress on this loop, by endpoint id.
    var busy: [Int] = []
    /// Requests waiting for a slot, oldest first.
    var pending: [PendingRequest] = []
    /// The first upstream (index) each endpoint id belongs to: whose outlier settings apply
    /// to failures seen without a request's upstream at hand (shadow copies).
    private(set) var endpointUpstream: [Int] = []

    init(stats: ResilienceStats, slots: ResilienceSlots) {
        self.stats = stats
        self.slots = slots
    }

    func adopt(_ snapshot: Snapshot, worker index: Int, workers: Int, maxEndpointID: Int) {
        policies = snapshot.upstreams.map(\.policy)
        upstreamSlot = snapshot.upstreams.map { slots.slot($0.name) }
        connectionShare = policies.map { p in
            p.maxConnections == 0 ? 0 : max(1, MirrorGate.share(of: p.maxConnections, worker: index, workers: workers))
        }
        pendingShare = policies.map { p in MirrorGate.share(of: p.maxPending, worker: index, workers: workers) }
        // Waiting requests keep their place; counts are rebuilt for the new indexes.
        pendingCount = Array(repeating: 0, count: policies.count)
        for p in pending where p.upstream < pendingCount.count { pendingCount[p.upstream] += 1 }
        budgets = Array(repeating: RetryBudget(), count: policies.count)
        endpointUpstream = Array(repeating: -1, count: maxEndpointID + 1)
        for (u, upstream) in snapshot.upstreams.enumerated() {
            let endpoints: [Endpoint]
            switch upstream.kind {
            case .pool(let p): endpoints = p.endpoints
            case .blueGreen(let bg): endpoints = bg.blue.endpoints + bg.green.endpoints
            }
            for e in endpoints where e.id >= 0 && e.id <= maxEndpointID && endpointUpstream[e.id] < 0 { endpointUpstream[e.id] = u }
        }
        if busy.count <= maxEndpointID { busy.append(contentsOf: repeatElement(0, count: maxEndpointID + 1 - busy.count)) }
    }

    @inline(__always)
    func count(_ c: ResilienceCounter, upstream: Int) {
        if upstream >= 0 && upstream < upstreamSlot.count { stats.add(c, upstreamSlot: upstreamSlot[upstream]) }
    }

    @inline(__always)
    func policy(_ upstream: Int) -> UpstreamPolicy? { upstream >= 0 && upstream < policies.count ? policies[upstream] : nil }

    @inline(__always)
    func hasRoom(endpoint id: Int, upstream: Int) -> Bool {
        guard upstream < connectionShare.count else { return true }
        let cap = connectionShare[upstream]
        return cap == 0 || id >= busy.count || busy[id] < cap
    }
}

/// Why no endpoint was picked.
enum PickFailure: Error {
    /// Every endpoint was tried already, or the pool has none that takes requests.
    case exhausted
    /// None of the untried endpoints is healthy (and the pool does not fail open).
    case unhealthy
    /// Healthy endpoints remain but each is at maxConnections.
    case full
}

extension Worker {
    /// Picks an endpoint of `upstream` (color for blue/green) not yet tried that is healthy,
    /// not ejected and under its connection limit. A pool with no healthy endpoint left fails
    /// open (every endpoint is eligible again) when its policy says so.
    func choose(upstream: Int, color: Color?, tried: UInt64) -> Result<(index: Int, endpoint: Endpoint), PickFailure> {
        let c = (color == .green) ? 1 : 0
        guard upstream < balancers.count, c < balancers[upstream].count else { return .failure(.exhausted) }
        let now = loop.now
        let board = health
        let r = resilience
        if let i = balancers[upstream][c].next(excluding: tried, where: { e in
            board.isAvailable(e.id, now: now) && r.hasRoom(endpoint: e.id, upstream: upstream)
        }) {
            return .success((i, balancers[upstream][c].endpoints[i]))
        }
        // Nothing eligible: say why.
        var untried = false
        var healthyUntried = false
        for (i, e) in balancers[upstream][c].endpoints.enumerated() where !e.draining && e.weight > 0 {
            if i < 64 && tried & (1 << UInt64(i)) != 0 { continue }
            untried = true
            if board.isAvailable(e.id, now: now) { healthyUntried = true }
        }
        if !untried { return .failure(.exhausted) }
        if healthyUntried { return .failure(.full) }
        if r.policy(upstream)?.failOpen != true {
            // Panic (Envoy's healthy_panic_threshold, at its floor): nothing passes, so an
            // endpoint that is only ejected (its active check, if any, passes) is tried again
            // rather than answering 503 with endpoints that may well be back.
            if let i = balancers[upstream][c].next(excluding: tried, where: { e in
                !board.isDown(e.id) && r.hasRoom(endpoint: e.id, upstream: upstream)
            }) {
                r.count(.panic, upstream: upstream)
                return .success((i, balancers[upstream][c].endpoints[i]))
            }
            return .failure(.unhealthy)
        }
        if let i = balancers[upstream][c].next(excluding: tried, where: { e in r.hasRoom(endpoint: e.id, upstream: upstream) }) {
            r.count(.failOpen, upstream: upstream)
            return .success((i, balancers[upstream][c].endpoints[i]))
        }
        return .failure(.full)
    }

    /// A healthy, non-ejected endpoint of the shadow upstream's pool of `color` (nil: its one pool) for a copy.
    func pickMirrorEndpoint(upstream: Int, color: Color?) -> Endpoint? {
        let c = color == .green ? 1 : 0
        guard upstream < balancers.count, c < balancers[upstream].count else { return nil }
        let now = loop.now
        let board = health
        guard let i = balancers[upstream][c].next(excluding: 0, where: { board.isAvailable($0.id, now: now) }) else { return nil }
        return balancers[upstream][c].endpoints[i]
    }

    // MARK: passive outcomes

    /// A shadow endpoint refused or timed out: it counts against the endpoint like any failure.
    func mirrorEndpointFailedPassively(_ id: Int) {
        let r = resilience
        guard id >= 0 && id < r.endpointUpstream.count, r.endpointUpstream[id] >= 0 else { return }
        endpointFailed(id, upstream: r.endpointUpstream[id])
    }

    /// The endpoint answered (status below 500) or a connection to it worked out.
    @inline(__always)
    func endpointSucceeded(_ id: Int) { health.succeeded(id) }

    /// The endpoint failed an exchange; the upstream's outlier settings decide an ejection.
    func endpointFailed(_ id: Int, upstream: Int) {
        guard let od = resilience.policy(upstream)?.outlierDetection, od.enabled else { return }
        let now = loop.now
        _ = health.failed(id, now: now, od) { self.mayEject(id, upstream: upstream, now: now, percent: od.maxEjectionPercent) }
    }

    /// Whether ejecting endpoint `id` keeps its pool within `percent` ejected (one endpoint may
    /// always be ejected).
    private func mayEject(_ id: Int, upstream: Int, now: UInt64, percent: Int) -> Bool {
        guard upstream < balancers.count,
              let pool = balancers[upstream].first(where: { $0.endpoints.contains { $0.id == id } }) else { return true }
        let serving = pool.endpoints.filter { !$0.draining && $0.weight > 0 }
        let ejected = serving.filter { $0.id != id && health.isEjected($0.id, now: now) }.count
        if ejected == 0 { return true }
        return (ejected + 1) * 100 <= percent * serving.count
    }

    // MARK: retry budget

    /// A request for `upstream` starts: it adds to the retry budget.
    @inline(__always)
    func budgetRequest(upstream: Int) {
        guard upstream < resilience.budgets.count, resilience.policies[upstream].retries.budgetPercent != nil else { return }
        resilience.budgets[upstream].roll(now: loop.now)
        resilience.budgets[upstream].requests += 1
    }

    /// Whether one more retry fits the upstream's budget; spends it when it does.
    func spendRetry(upstream: Int) -> Bool {
        guard let p = resilience.policy(upstream) else { return false }
        guard let percent = p.retries.budgetPercent else { return true }
        resilience.budgets[upstream].roll(now: loop.now)
        let b = resilience.budgets[upstream]
        if b.retries * 100 < p.retries.minRetries * 100 + b.requests * percent {
            resilience.budgets[upstream].retries += 1
            return true
        }
        resilience.count(.retryBudgetExhausted, upstream: upstream)
        return false
    }

    // MARK: limits

    /// Exchanges in progress per endpoint: counted for the metrics (all loops) and for this
    /// loop's maxConnections.
    @inline(__always)
    func exchangeStarted(endpoint id: Int) {
        if id >= 0 && id < resilience.busy.count { resilience.busy[id] += 1 }
    }

    @inline(__always)
    func exchangeEnded(endpoint id: Int) {
        if id >= 0 && id < resilience.busy.count && resilience.busy[id] > 0 { resilience.busy[id] -= 1 }
        if !resilience.pending.isEmpty { wakePending(freed: id) }
    }

    /// Whether a request may wait for a slot of `upstream`; queues it when it may.
    func enqueuePending(_ client: ClientConnection, upstream: Int, color: Color?) -> Bool {
        let r = resilience
        guard upstream < r.pendingShare.count, r.pendingCount[upstream] < r.pendingShare[upstream] else { return false }
        r.pending.append(PendingRequest(client: client, upstream: upstream, color: color))
        r.pendingCount[upstream] += 1
        r.count(.queued, upstream: upstream)
        return true
    }

    /// Takes a waiting request out of the queue (it timed out or its client left).
    func cancelPending(_ client: ClientConnection) {
        let r = resilience
        guard let i = r.pending.firstIndex(where: { $0.client === client }) else { return }
        let p = r.pending.remove(at: i)
        if p.upstream < r.pendingCount.count && r.pendingCount[p.upstream] > 0 { r.pendingCount[p.upstream] -= 1 }
    }

    /// A slot on endpoint `id` freed: the oldest request waiting for a pool with that endpoint
    /// tries again after this round of events.
    private func wakePending(freed id: Int) {
        let r = resilience
        for (i, p) in r.pending.enumerated() {
            let c = p.color == .green ? 1 : 0
            guard p.upstream < balancers.count, c < balancers[p.upstream].count,
                  balancers[p.upstream][c].endpoints.contains(where: { $0.id == id }) else { continue }
            r.pending.remove(at: i)
            if r.pendingCount[p.upstream] > 0 { r.pendingCount[p.upstream] -= 1 }
            p.client.slotFreed()
            return
        }
    }
}
