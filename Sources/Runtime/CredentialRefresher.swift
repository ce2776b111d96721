// Renews whatever expires (AWS credentials from a temporary provider, Google ID tokens) on a
// background queue, never on a request: each is renewed ahead of its expiry and the new value
// published to its LiveCredential, which every request reads. The rule (RenewalSchedule): renew
// 5 minutes before expiry, as the AWS SDKs do, or at half the remaining lifetime when that is
// shorter (a token valid for 60 s is renewed after 30 s). A failed renewal keeps the current
// value and is retried after 1, 2, 4 ... up to 60 s; each failure is counted and logged once.
// Past its expiry the old value is still sent, as Envoy does with the credentials it cached:
// the endpoint refuses it (401/403), the log and `switchyard_credentials_expiry_seconds` say
// why, and the next successful renewal puts things right without a reload.
import Dispatch
import Glibc
import Proxy
import SigV4
import Synchronization

/// Something with an expiry that can be obtained again.
public protocol ExpiringCredential: AnyObject, Sendable {
    /// The metrics' `provider` label: "aws", "google".
    var provider: String { get }
    /// For log lines and the `credential` label; never the secret itself.
    var name: String { get }
    /// Obtains a fresh value, publishes it to everything that uses it, and answers when it
    /// expires (seconds since the epoch; nil: it does not).
    func renew() throws(CredentialsError) -> Int?
}

/// When to renew and when to retry; pure, in seconds.
enum RenewalSchedule {
    static let lead = 300
    static let maxRetry = 60

    /// When to renew a value obtained at `now` that expires at `expiration`; a second from
    /// now at the soonest (a value handed out already expired is not asked for in a loop).
    static func renewal(now: Int, expiration: Int) -> Int {
        guard expiration > now else { return now + 1 }
        return max(now + 1, expiration - min(lead, (expiration - now) / 2))
    }

    /// When to try again after `failures` (1 or more) renewals failed in a row.
    static func retry(now: Int, failures: Int) -> Int {
        now + min(maxRetry, 1 << min(max(failures, 1) - 1, 6))
    }
}

public final class CredentialRefresher: @unchecked Sendable {
    private struct Entry {
        let credential: any ExpiringCredential
        var expiration: Int
        var due: Int
        var failures = 0
    }

    /// Entries and the timer: confined to `queue`.
    private let queue = DispatchQueue(label: "switchyard.credentials")
    private var entries: [Entry] = []
    private var timer: (any DispatchSourceTimer)?
    private let log: @Sendable (String) -> Void
    private let clock: @Sendable () -> Int
    /// Whether a timer runs the schedule (off in tests that drive `run(now:)` themselves).
    private let timed: Bool
    private let report = Mutex(Report())

    /// For /metrics: renewals by provider and result, and each credential's expiry.
    public struct Report: Sendable {
        public var renewals: [String: (ok: UInt64, failed: UInt64)] = [:]
        public var expirations: [(provider: String, name: String, expiration: Int)] = []
    }

    public init(log: @escaping @Sendable (String) -> Void, clock: @escaping @Sendable () -> Int = { time(nil) }, timed: Bool = true) {
        self.log = log
        self.clock = clock
        self.timed = timed
    }

    public var values: Report { report.withLock { $0 } }
    public var now: Int { clock() }

    /// Renews `credentials` from now on, in place of those given before (a reload, a new
    /// config); each with the expiry of the value it holds now. Those without one are left.
    public func replace(_ credentials: [(any ExpiringCredential, expiration: Int?)]) {
        queue.sync {
            let now = clock()
            entries = credentials.compactMap { c, expiration in
                expiration.map { Entry(credential: c, expiration: $0, due: RenewalSchedule.renewal(now: now, expiration: $0)) }
            }
            publishReport()
            schedule(now: now)
        }
    }

    /// Stops renewing (shutdown); a renewal under way ends first.
    public func stop() {
        queue.sync {
            entries = []
            timer?.cancel()
            timer = nil
        }
    }

    /// Renews what is due at `now`; answers when the next one is due. The timer calls it; tests
    /// call it with their own clock values.
    @discardableResult
    func run(now: Int) -> Int? {
        dispatchPrecondition(condition: .onQueue(queue))
        for i in entries.indices where entries[i].due <= now {
            let c = entries[i].credential
            do throws(CredentialsError) {
                let expiration = try c.renew()
                count(c.provider, ok: true)
                entries[i].failures = 0
                guard let expiration else {
                    entries[i].due = Int.max
                    continue
                }
                entries[i].expiration = expiration
                entries[i].due = RenewalSchedule.renewal(now: now, expiration: expiration)
            } catch {
                entries[i].failures += 1
                entries[i].due = RenewalSchedule.retry(now: now, failures: entries[i].failures)
                let left = entries[i].expiration - now
                log("credentials: renewing \(c.provider) \(c.name) failed: \(error); "
                    + (left > 0 ? "keeping the current one, which expires in \(left)s" : "still sending the current one, which expired \(-left)s ago")
                    + "; next try in \(entries[i].due - now)s")
                count(c.provider, ok: false)
            }
        }
        publishReport()
        return entries.map(\.due).min()
    }

    /// `run(now:)` on the refresher's queue, for tests.
    func runNow(_ now: Int) -> Int? { queue.sync { run(now: now) } }

    private func schedule(now: Int) {
        timer?.cancel()
        timer = nil
        guard timed, let next = entries.map(\.due).min(), next != Int.max else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .seconds(max(0, min(next - now, 86_400))))
        t.setEventHandler { [weak self] in
            guard let self else { return }
            let now = self.clock()
            self.run(now: now)
            self.schedule(now: now)
        }
        timer = t
        t.resume()
    }

    private func count(_ provider: String, ok: Bool) {
        report.withLock {
            var c = $0.renewals[provider] ?? (0, 0)
            if ok { c.ok &+= 1 } else { c.failed &+= 1 }
            $0.renewals[provider] = c
        }
    }

    private func publishReport() {
        let expirations = entries.map { ($0.credential.provider, $0.credential.name, $0.expiration) }
        report.withLock { $0.expirations = expirations }
    }
}

extension CredentialRefresher {
    /// `switchyard_credentials_refresh_total{provider,result}` and
    /// `switchyard_credentials_expiry_seconds{provider,credential}` (negative once expired).
    package func write(_ w: inout PrometheusText) {
        let r = values
        let now = clock()
        w.family("switchyard_credentials_refresh_total", .counter, "Background renewals of expiring credentials (auth.aws, auth.google), by result.",
                 r.renewals.sorted { $0.key < $1.key }.flatMap { provider, c in
                     [("provider=\"\(provider)\",result=\"ok\"", c.ok), ("provider=\"\(provider)\",result=\"failed\"", c.failed)]
                 })
        w.family("switchyard_credentials_expiry_seconds", .gauge, "Seconds until each expiring credential in use expires (negative: expired, still sent).")
        for e in r.expirations {
            w.sample("switchyard_credentials_expiry_seconds", "provider=\"\(e.provider)\",credential=\"\(SeriesTable.escape(e.name))\"",
                     Double(e.expiration - now))
        }
    }
}
