// The retry and outlier rules of Attempts.swift as tables: each row is how an attempt ended and
// under which policy, and what must follow.
import HTTP1
import Routing
import XCTest
@testable import Proxy

final class AttemptsTests: XCTestCase {
    private func policy(onConnect: Bool = true, onReset: Bool = false, statuses: [Int] = [], attempts: Int = 2,
                        count5xx: Bool = false) -> UpstreamPolicy {
        var p = UpstreamPolicy()
        p.retries.attempts = attempts
        p.retries.onConnect = onConnect
        p.retries.onReset = onReset
        for s in statuses { p.retries.retry(status: s) }
        p.outlierDetection.count5xx = count5xx
        return p
    }

    func testAfterAFailure() {
        typealias F = Attempts.Failure
        let rows: [(String, F, RetryPolicy?, HTTP1.Method, Attempts.AfterFailure)] = [
            ("a pooled connection closed while idle is replaced, nothing counted",
             F(reused: true, connected: true, receivedAny: false, timeout: false, bodySent: 0, wholeRequestSent: true), policy().retries, .post,
             .replaceConnection),
            ("a pooled connection that timed out is a 504, not replaced",
             F(reused: true, connected: true, receivedAny: false, timeout: true, bodySent: 0, wholeRequestSent: true), policy().retries, .get,
             .failed(retry: false, status: 504)),
            ("a pooled connection that took body bytes is not replaced",
             F(reused: true, connected: true, receivedAny: false, timeout: false, bodySent: 5, wholeRequestSent: false), policy(onReset: true).retries, .put,
             .failed(retry: false, status: 502)),
            ("a refused connect retries under onConnect",
             F(reused: false, connected: false), policy(onConnect: true).retries, .post, .failed(retry: true, status: 502)),
            ("a refused connect without onConnect is a 502",
             F(reused: false, connected: false), policy(onConnect: false).retries, .get, .failed(retry: false, status: 502)),
            ("a connect timeout retries under onConnect",
             F(reused: false, connected: false, timeout: true), policy(onConnect: true).retries, .get, .failed(retry: true, status: 504)),
            ("a reset before any answer retries an idempotent request under onReset",
             F(reused: false, connected: true, receivedAny: false, timeout: false, bodySent: 0, wholeRequestSent: true), policy(onReset: true).retries, .get,
             .failed(retry: true, status: 502)),
            ("a reset after a whole POST is not retried: the upstream may have acted on it",
             F(reused: false, connected: true, receivedAny: false, timeout: false, bodySent: 0, wholeRequestSent: true), policy(onReset: true).retries, .post,
             .failed(retry: false, status: 502)),
            ("a reset during a POST's head, before it was whole, is retried",
             F(reused: false, connected: true, receivedAny: false, timeout: false, bodySent: 0, wholeRequestSent: false), policy(onReset: true).retries, .post,
             .failed(retry: true, status: 502)),
            ("a reset after body bytes went out is never retried",
             F(reused: false, connected: true, receivedAny: false, timeout: false, bodySent: 1, wholeRequestSent: false), policy(onReset: true).retries, .put,
             .failed(retry: false, status: 502)),
            ("a reset without onReset is a 502",
             F(reused: false, connected: true, receivedAny: false), policy(onReset: false).retries, .get, .failed(retry: false, status: 502)),
            ("a broken answer (bytes arrived) is not retried",
             F(reused: false, connected: true, receivedAny: true), policy(onReset: true).retries, .get, .failed(retry: false, status: 502)),
            ("a response timeout is a 504 and not retried",
             F(reused: false, connected: true, receivedAny: false, timeout: true), policy(onReset: true).retries, .get, .failed(retry: false, status: 504)),
            ("a response head over the limits is the answer's fault, not the endpoint's",
             F(reused: false, connected: true, receivedAny: true, headTooLarge: true), policy(onReset: true).retries, .get, .headTooLarge),
            ("no policy: nothing is retried",
             F(reused: false, connected: false), nil, .get, .failed(retry: false, status: 502)),
        ]
        for (name, failure, retries, method, expected) in rows {
            XCTAssertEqual(Attempts.afterFailure(failure, policy: retries, method: method), expected, name)
        }
    }

    func testAfterAResponseHead() {
        let rows: [(String, Int, UpstreamPolicy?, HTTP1.Method, Int64, Bool, Attempts.AfterHead)] = [
            ("a 200 is a success", 200, policy(statuses: [503], count5xx: true), .get, 0, true, .init(endpointFailed: false, retryWanted: false)),
            ("a 404 is a success", 404, policy(count5xx: true), .get, 0, true, .init(endpointFailed: false, retryWanted: false)),
            ("a 503 counts only when 5xx count", 503, policy(), .get, 0, true, .init(endpointFailed: false, retryWanted: false)),
            ("a 503 counted", 503, policy(count5xx: true), .get, 0, true, .init(endpointFailed: true, retryWanted: false)),
            ("a 503 retried when listed", 503, policy(statuses: [503]), .get, 0, true, .init(endpointFailed: false, retryWanted: true)),
            ("a 502 not listed", 502, policy(statuses: [503]), .get, 0, true, .init(endpointFailed: false, retryWanted: false)),
            ("a listed 503 to a whole POST is not retried", 503, policy(statuses: [503]), .post, 0, true,
             .init(endpointFailed: false, retryWanted: false)),
            ("a listed 503 after body bytes is not retried", 503, policy(statuses: [503]), .put, 10, true,
             .init(endpointFailed: false, retryWanted: false)),
            ("no policy", 500, nil, .get, 0, true, .init(endpointFailed: false, retryWanted: false)),
        ]
        for (name, status, p, method, bodySent, whole, expected) in rows {
            XCTAssertEqual(Attempts.afterHead(status: status, policy: p, method: method, bodySent: bodySent, wholeRequestSent: whole),
                           expected, name)
        }
    }

    func testMayRetry() {
        let p = policy(attempts: 3)
        XCTAssertTrue(Attempts.mayRetry(allowed: true, clientSawResponse: false, retriesSoFar: 0, policy: p))
        XCTAssertTrue(Attempts.mayRetry(allowed: true, clientSawResponse: false, retriesSoFar: 1, policy: p))
        XCTAssertFalse(Attempts.mayRetry(allowed: true, clientSawResponse: false, retriesSoFar: 2, policy: p), "3 attempts: 2 retries")
        XCTAssertFalse(Attempts.mayRetry(allowed: false, clientSawResponse: false, retriesSoFar: 0, policy: p))
        XCTAssertFalse(Attempts.mayRetry(allowed: true, clientSawResponse: true, retriesSoFar: 0, policy: p), "the client saw bytes")
        XCTAssertFalse(Attempts.mayRetry(allowed: true, clientSawResponse: false, retriesSoFar: 0, policy: nil))
        XCTAssertFalse(Attempts.mayRetry(allowed: true, clientSawResponse: false, retriesSoFar: 0, policy: policy(attempts: 1)),
                       "one attempt: no retry")
    }
}
