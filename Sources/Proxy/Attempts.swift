// Retry and outlier decisions for an exchange's attempts, as pure functions of what happened,
// the upstream's policy and what already reached the client: which failures count against the
// endpoint (outlier detection), which may be made again elsewhere (the retry policy, RFC 9110
// 9.2.2 idempotency), and what the client is answered otherwise. The client connection carries
// them out (budgets, counters, the next attempt); the rules are read and tested here.
import HTTP1
import Routing

enum Attempts {
    /// How an attempt ended before any response byte reached the client.
    struct Failure: Equatable {
        /// The connection came from the pool (it may have been closed by the upstream while idle).
        var reused = false
        /// The upstream connection became ready (connected, or taken from the pool).
        var connected = true
        /// Any response byte arrived on it.
        var receivedAny = false
        /// No answer in time (responseMs), as opposed to a refused or reset connection.
        var timeout = false
        /// Bytes of the request body written to the upstream.
        var bodySent: Int64 = 0
        /// The whole request (head and body) was written.
        var wholeRequestSent = false
        /// The response head went over the response limits (size or field count).
        var headTooLarge = false
    }

    /// What follows a failed attempt.
    enum AfterFailure: Equatable {
        /// A pooled connection the upstream had already closed: it says nothing against the
        /// endpoint, which stays eligible, for a fresh connection.
        case replaceConnection
        /// Counted against the endpoint; made again elsewhere when `retry` (and the client has
        /// seen nothing, tries and budget remain: `mayRetry`), else answered with `status`
        /// (504 for a timeout, else 502).
        case failed(retry: Bool, status: Int)
        /// The endpoint answered, with a head over the response limits: a 502 that says so,
        /// not a failure of the endpoint (five large cookie sets ejected a healthy one).
        case headTooLarge
    }

    /// What the client's answer says when an attempt failed with `status`.
    static func reason(status: Int) -> StaticString { status == 504 ? "upstream timed out" : "upstream connection failed" }

    static func afterFailure(_ f: Failure, policy: RetryPolicy?, method: HTTP1.Method) -> AfterFailure {
        if f.headTooLarge { return .headTooLarge }
        if f.reused && !f.receivedAny && f.bodySent == 0 && !f.timeout { return .replaceConnection }
        let retry: Bool
        if !f.connected && !f.reused {
            retry = policy?.onConnect ?? false
        } else if !f.timeout && !f.receivedAny {
            retry = (policy?.onReset ?? false) && safeToResend(method: method, bodySent: f.bodySent, wholeRequestSent: f.wholeRequestSent)
        } else {
            retry = false
        }
        return .failed(retry: retry, status: f.timeout ? 504 : 502)
    }

    /// What a response head means for the endpoint and the request.
    struct AfterHead: Equatable {
        /// Counted as a failure of the endpoint (outlier detection); else as a success.
        var endpointFailed: Bool
        /// The policy retries this status and the request can be sent again.
        var retryWanted: Bool
    }

    static func afterHead(status: Int, policy: UpstreamPolicy?, method: HTTP1.Method, bodySent: Int64,
                          wholeRequestSent: Bool) -> AfterHead {
        guard status >= 500 else { return AfterHead(endpointFailed: false, retryWanted: false) }
        let counted = policy?.outlierDetection.count5xx == true
        let retry = policy.map { $0.retries.retries(status: status) } == true
            && safeToResend(method: method, bodySent: bodySent, wholeRequestSent: wholeRequestSent)
        return AfterHead(endpointFailed: counted, retryWanted: retry)
    }

    /// Whether a retry the policy allows may be made now: nothing of a response reached the
    /// client and the policy's tries are not used up (the budget is the worker's to spend).
    static func mayRetry(allowed: Bool, clientSawResponse: Bool, retriesSoFar: Int, policy: UpstreamPolicy?) -> Bool {
        guard allowed, !clientSawResponse, let p = policy else { return false }
        return retriesSoFar + 1 < p.retries.attempts
    }

    /// Whether sending the request again cannot make the upstream act on it twice: nothing of
    /// the body went out, and the method is idempotent or the request was not complete.
    static func safeToResend(method: HTTP1.Method, bodySent: Int64, wholeRequestSent: Bool) -> Bool {
        bodySent == 0 && (method.isIdempotent || !wholeRequestSent)
    }
}
