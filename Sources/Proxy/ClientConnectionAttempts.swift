// A client connection's attempts at its upstream: choosing an endpoint (health, ejection,
// limits: `choose`), waiting for a connection slot, and what follows a failed attempt, as
// Attempts.swift decides it (a fresh connection, a retry elsewhere, or the proxy's answer).
import Glibc
import HTTP1
import Reactor
import Routing

extension ClientConnection {
    func connectUpstream() {
        let d = exchange.decision
        while true {
            exchange.attempts += 1
            let pick: (index: Int, endpoint: Endpoint)
            switch worker.choose(upstream: d.upstream, color: d.color, tried: exchange.tried) {
            case .success(let p) where exchange.attempts <= 16: pick = p
            case .success:
                exchange.attempts -= 1   // this one found nothing to try
                return noEndpoint(.exhausted)
            case .failure(let why):
                exchange.attempts -= 1
                return noEndpoint(why)
            }
            if pick.index < 64 { exchange.tried |= 1 << UInt64(pick.index) }
            exchange.lastPick = pick.index
            exchange.endpoint = pick.endpoint.id
            exchange.endpointSeries = worker.series.endpoint(upstream: d.upstream, color: d.color, index: pick.index)
            guard let u = worker.acquireUpstream(pick.endpoint) else {
                worker.stats.add(.upstreamConnectFailures)
                worker.endpointFailed(pick.endpoint.id, upstream: d.upstream)
                if mayRetry(worker.resilience.policy(d.upstream)?.retries.onConnect ?? false) { continue }
                respondLocally(status: 502, detail: "upstream connection failed",
                               close: !relay.requestFullyConsumed || !exchange.keepAlive)
                return
            }
            relay.attach(u, Relay.AttemptContext(endpointSeries: Int(exchange.endpointSeries), hashBody: exchange.hashBody,
                                                 clientCanSplice: transport.canSpliceTo))
            return
        }
    }

    /// No endpoint could take the request: every one tried, none healthy, or every one busy.
    func noEndpoint(_ why: PickFailure) {
        let d = exchange.decision
        let close = !relay.requestFullyConsumed || !exchange.keepAlive
        guard exchange.tried == 0 else {
            // A retry found nowhere else to go: the failure of the last attempt stands.
            respondLocally(status: 502, detail: "upstream unreachable", close: close)
            return
        }
        switch why {
        case .exhausted:
            respondLocally(status: 503, detail: "no endpoint available", close: close)
        case .unhealthy:
            worker.resilience.count(.noHealthyEndpoint, upstream: d.upstream)
            respondLocally(status: 503, detail: "no healthy endpoint", close: close, retryAfter: true)
        case .full:
            if worker.enqueuePending(self, upstream: d.upstream, color: d.color) {
                waitingForSlot = true
                loop.setDeadline(self, afterMs: worker.settings.connectMs)
                return
            }
            let pendingAllowed = (worker.resilience.policy(d.upstream)?.maxPending ?? 0) > 0
            worker.resilience.count(pendingAllowed ? .rejectedMaxPending : .rejectedMaxConnections, upstream: d.upstream)
            respondLocally(status: 503, detail: "upstream at its connection limit", close: close, retryAfter: true)
        }
    }

    /// Called by the worker when a slot of this request's upstream freed: try again once the
    /// current round of events is done (the slot freed inside another exchange's teardown).
    func slotFreed() { loop.resumeSoon(self) }

    func leaveSlotQueue() {
        if waitingForSlot {
            waitingForSlot = false
            worker.cancelPending(self)
        }
    }

    /// Whether the failed attempt may be made again elsewhere (Attempts.mayRetry), with budget
    /// left for it. Counts the retry.
    func mayRetry(_ allowedByPolicy: Bool) -> Bool {
        let d = exchange.decision
        let policy = worker.resilience.policy(d.upstream)
        let sentOrQueued = exchange.bytesOut &+ Int64(relay.out.readableCount)
        guard Attempts.mayRetry(allowed: allowedByPolicy, clientSawResponse: responseStarted || sentOrQueued > exchange.continueBytes,
                                retriesSoFar: exchange.retries, policy: policy),
              worker.spendRetry(upstream: d.upstream) else { return false }
        exchange.retries += 1
        exchange.upstreamReadyNs = 0
        worker.stats.add(.upstreamRetries)
        worker.resilience.count(.retries, upstream: d.upstream)
        return true
    }

    /// The upstream connection is ready to take the request: connected now, or taken from the
    /// pool (`atOnce`: in the same turn as the head, or as the end of a body read whole, whose
    /// time it shares; a clock read saved).
    func upstreamReady(atOnce: Bool) {
        if exchange.upstreamReadyNs == 0 {
            exchange.upstreamReadyNs = atOnce ? max(exchange.headReceivedNs, exchange.bodyBufferedNs) : Sys.monotonicNs()
        }
    }

    /// The response broke after its head arrived (bad body framing, the upstream gone or silent
    /// mid-body). While not one byte of it has reached the client, the head is taken back and
    /// the client gets a 502 like any failed attempt (it got a silent close); after that, the
    /// client connection ends too, since a second response cannot follow a started one.
    func upstreamBroke() {
        guard phase == .exchange, exchange.bytesOut == exchange.continueBytes, responseStarted, let u = relay.detachUpstream() else {
            abort()
            return
        }
        u.abandon()
        worker.endpointFailed(exchange.endpoint, upstream: exchange.decision.upstream)
        relay.out.consume(relay.out.readableCount)
        responseStarted = false
        respondLocally(status: 502, detail: "invalid response from upstream", close: true)
    }

    /// An attempt failed before any response byte: what follows is Attempts.afterFailure's
    /// verdict (a fresh connection, a retry elsewhere, or a 502/504).
    func upstreamFailed(_ u: UpstreamConnection, _ failure: Attempts.Failure) {
        guard relay.upstream === u else { return }
        relay.detachUpstream()
        if responseStarted {
            abort()
            return
        }
        let d = exchange.decision
        switch Attempts.afterFailure(failure, policy: worker.resilience.policy(d.upstream)?.retries, method: exchange.method) {
        case .replaceConnection:
            worker.stats.add(.upstreamRetries)
            exchange.upstreamReadyNs = 0
            let last = exchange.lastPick
            if last >= 0 && last < 64 { exchange.tried &= ~(1 << UInt64(last)) }
            connectUpstream()
        case .headTooLarge:
            respondLocally(status: 502, detail: "response head too large", close: !relay.requestFullyConsumed || !exchange.keepAlive)
        case .failed(let retry, let status):
            worker.endpointFailed(exchange.endpoint, upstream: d.upstream)
            if mayRetry(retry) {
                connectUpstream()
                return
            }
            respondLocally(status: status, detail: Attempts.reason(status: status), close: !relay.requestFullyConsumed || !exchange.keepAlive)
        }
    }

}
