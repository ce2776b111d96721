// The refresher's rules, driven by the test's own clock values (no timer, no sleep): renewal
// 5 minutes before expiry or at half the remaining lifetime, the old value kept through failed
// renewals retried with backoff, one log line and one count per failure; and a JWT's exp read
// strictly.
import Foundation
import SigV4
import Synchronization
@testable import Runtime
import XCTest

final class CredentialRefresherTests: XCTestCase {
    /// Hands out the results queued in it, in order, and records when it was asked.
    private final class Scripted: ExpiringCredential, @unchecked Sendable {
        var results: [Result<Int?, CredentialsError>]
        var calls = 0
        var provider: String { "test" }
        var name: String { "scripted" }
        init(_ results: [Result<Int?, CredentialsError>]) { self.results = results }
        func renew() throws(CredentialsError) -> Int? {
            calls += 1
            return try results.removeFirst().get()
        }
    }

    func testTheScheduleRenewsFiveMinutesAheadOrAtHalfTheLifetime() {
        XCTAssertEqual(RenewalSchedule.renewal(now: 1000, expiration: 1000 + 3600), 1000 + 3300, "an hour: 5 minutes before")
        XCTAssertEqual(RenewalSchedule.renewal(now: 1000, expiration: 1000 + 600), 1000 + 300, "10 minutes: at half")
        XCTAssertEqual(RenewalSchedule.renewal(now: 1000, expiration: 1000 + 60), 1000 + 30)
        XCTAssertEqual(RenewalSchedule.renewal(now: 1000, expiration: 1001), 1001, "a second from now at the soonest")
        XCTAssertEqual(RenewalSchedule.renewal(now: 1000, expiration: 900), 1001, "already expired: not in a loop")
        XCTAssertEqual((1...9).map { RenewalSchedule.retry(now: 0, failures: $0) }, [1, 2, 4, 8, 16, 32, 60, 60, 60])
        XCTAssertEqual(RenewalSchedule.retry(now: 0, failures: Int.max), 60, "no overflow")
    }

    func testAFailedRenewalKeepsTheOldValueRetriesWithBackoffAndLogsEachFailureOnce() {
        let lines = Mutex<[String]>([])
        let refresher = CredentialRefresher(log: { line in lines.withLock { $0.append(line) } }, clock: { 1000 }, timed: false)
        let c = Scripted([.failure(CredentialsError("metadata server down")), .failure(CredentialsError("metadata server down")),
                          .success(1000 + 3600)])
        refresher.replace([(c, expiration: 1060)])
        XCTAssertEqual(refresher.values.expirations.map(\.expiration), [1060])

        XCTAssertEqual(refresher.runNow(1029), 1030, "nothing due before half the lifetime")
        XCTAssertEqual(c.calls, 0)
        XCTAssertEqual(refresher.runNow(1030), 1031, "failed: again after 1 s")
        XCTAssertEqual(lines.withLock { $0.count }, 1)
        let line = lines.withLock { $0[0] }
        XCTAssertTrue(line.contains("renewing test scripted failed: metadata server down; keeping the current one, which expires in 30s; next try in 1s"), line)
        XCTAssertEqual(refresher.values.expirations.map(\.expiration), [1060], "the old value is kept")
        XCTAssertEqual(refresher.runNow(1031), 1033, "failed again: after 2 s")
        XCTAssertEqual(refresher.values.renewals["test"]?.failed, 2)
        XCTAssertEqual(refresher.runNow(1033), 1000 + 3600 - 300, "renewed: due 5 minutes before the new expiry")
        XCTAssertEqual(c.calls, 3)
        XCTAssertEqual(refresher.values.renewals["test"]?.ok, 1)
        XCTAssertEqual(refresher.values.expirations.map(\.expiration), [1000 + 3600])
        XCTAssertEqual(lines.withLock { $0.count }, 2, "one line per failure, none for a success")
    }

    func testPastItsExpiryTheOldValueIsStillSentAndSaidSo() {
        let lines = Mutex<[String]>([])
        let refresher = CredentialRefresher(log: { line in lines.withLock { $0.append(line) } }, clock: { 1000 }, timed: false)
        let c = Scripted([.failure(CredentialsError("down"))])
        refresher.replace([(c, expiration: 1010)])
        refresher.runNow(1020)
        XCTAssertTrue(lines.withLock { $0.first ?? "" }.contains("still sending the current one, which expired 10s ago"))
    }

    func testCredentialsWithoutExpiryAreNotRenewedAndAReplaceForgetsTheOldOnes() {
        let refresher = CredentialRefresher(log: { _ in }, clock: { 1000 }, timed: false)
        let forever = Scripted([])
        let old = Scripted([])
        refresher.replace([(old, expiration: 1100)])
        refresher.replace([(forever, expiration: nil)])
        XCTAssertNil(refresher.runNow(5000))
        XCTAssertEqual(forever.calls + old.calls, 0)
        XCTAssertTrue(refresher.values.expirations.isEmpty)
    }

    func testAJWTsExpIsReadStrictly() {
        func jwt(_ payload: String) -> String {
            let body = Data(payload.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            return "eyJhbGciOiJSUzI1NiJ9.\(body).c2lnbmF0dXJl"
        }
        XCTAssertEqual(GoogleIDTokenSource.expiration(ofJWT: jwt(#"{"aud":"https://a?b>","exp":1700000000}"#)), 1_700_000_000)
        for bad in [jwt(#"{"exp":"1700000000"}"#), jwt(#"{"exp":true}"#), jwt(#"{"exp":1.5}"#), jwt(#"{"exp":1e400}"#),
                    jwt(#"{"exp":-5}"#), jwt(#"{"exp":99999999999999999999}"#), jwt(#"{"iat":1}"#), jwt(#"[1]"#), jwt("not json"),
                    "a.b", "", "...", "a.%%%.c", jwt(#"{"exp":1}"#) + "\r\nX: y"] {
            XCTAssertNil(GoogleIDTokenSource.expiration(ofJWT: bad), bad)
        }
    }
}
