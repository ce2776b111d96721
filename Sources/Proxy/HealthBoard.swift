// Whether each endpoint may take traffic, for the whole process: the verdict of its active
// health check and its passive ejection. Written rarely (a check's transition, a failure, the
// first success after failures), read by every event loop with a relaxed load per candidate
// endpoint: a healthy endpoint costs no write to shared memory on the request path.
import CLinux
import Reactor
import Routing
import Synchronization

/// What an endpoint's state is, as shown by `show upstreams` and the metrics.
public enum EndpointHealth: String, Sendable {
    case healthy, unhealthy, ejected
}

public final class HealthBoard: @unchecked Sendable {
    /// Endpoint ids at or beyond this are never checked nor ejected.
    public static let capacity = 4096

    /// Per endpoint id: failed active check (1) or not (0); ejected until this monotonic
    /// millisecond; consecutive failures; ejections in a row without a success between them;
    /// ejections and check transitions so far.
    private let down: UnsafeMutablePointer<UInt64>
    private let ejectedUntil: UnsafeMutablePointer<UInt64>
    private let failures: UnsafeMutablePointer<UInt64>
    private let level: UnsafeMutablePointer<UInt64>
    private let ejectionCount: UnsafeMutablePointer<UInt64>
    private let transitionCount: UnsafeMutablePointer<UInt64>
    private let checksPassed: UnsafeMutablePointer<UInt64>
    /// The length of the latest ejection, in ms (its doubling is visible without a clock).
    private let lastEjectionMs: UnsafeMutablePointer<UInt64>
    private let checksFailed: UnsafeMutablePointer<UInt64>
    /// Why the newest check of each endpoint failed (absent once one passes).
    private let checkFailures = Mutex<[Int: String]>([:])
    /// Deciding an ejection (rare): two loops reaching the threshold at once eject once.
    private let ejecting = Mutex<Void>(())
    private let clock: @Sendable () -> UInt64

    public init(clock: @escaping @Sendable () -> UInt64 = { Sys.monotonicMs() }) {
        func table() -> UnsafeMutablePointer<UInt64> {
            let p = UnsafeMutablePointer<UInt64>.allocate(capacity: HealthBoard.capacity)
            p.initialize(repeating: 0, count: HealthBoard.capacity)
            return p
        }
        down = table()
        ejectedUntil = table()
        failures = table()
        level = table()
        ejectionCount = table()
        transitionCount = table()
        checksPassed = table()
        lastEjectionMs = table()
        checksFailed = table()
        self.clock = clock
    }

    deinit {
        for p in [down, ejectedUntil, failures, level, ejectionCount, transitionCount, checksPassed, checksFailed, lastEjectionMs] { p.deallocate() }
    }

    @inline(__always)
    private func valid(_ id: Int) -> Bool { id >= 0 && id < Self.capacity }

    /// Whether new requests may go to the endpoint at `now` (monotonic ms).
    @inline(__always)
    func isAvailable(_ id: Int, now: UInt64) -> Bool {
        guard valid(id) else { return true }
        return sy_counter_load(down + id) == 0 && sy_counter_load(ejectedUntil + id) <= now
    }

    // MARK: passive (the request path)

    /// An exchange with the endpoint went well: its failure count starts over and a later
    /// ejection starts from the base time again. Loads only, unless something is to be reset.
    @inline(__always)
    func succeeded(_ id: Int) {
        guard valid(id) else { return }
        if sy_counter_load(failures + id) != 0 { sy_counter_store(failures + id, 0) }
        if sy_counter_load(level + id) != 0 { sy_counter_store(level + id, 0) }
    }

    /// Whether the endpoint is ejected at `now` (passively; an active check's verdict aside).
    @inline(__always)
    func isEjected(_ id: Int, now: UInt64) -> Bool {
        valid(id) && sy_counter_load(ejectedUntil + id) > now
    }

    /// Whether the endpoint failed its active health check.
    @inline(__always)
    func isDown(_ id: Int) -> Bool { valid(id) && sy_counter_load(down + id) != 0 }

    /// An exchange with the endpoint failed (connect, reset, timeout or 5xx). True when this
    /// failure ejected it. An endpoint back from an ejection is on probation: its first failure
    /// ejects it again, for twice as long. `mayEject` is asked at the moment of ejecting (the
    /// pool's share of ejected endpoints); when it says no, the failure is counted but the
    /// endpoint stays.
    func failed(_ id: Int, now: UInt64, _ od: OutlierDetection, mayEject: () -> Bool = { true }) -> Bool {
        guard valid(id), od.consecutiveFailures > 0 else { return false }
        // Answers still arriving from before the ejection say nothing new.
        if sy_counter_load(ejectedUntil + id) > now { return false }
        let n = sy_counter_add_fetch(failures + id, 1)
        guard n >= UInt64(od.consecutiveFailures) else { return false }
        return ejecting.withLock { _ in
            if sy_counter_load(ejectedUntil + id) > now { return false }
            guard mayEject() else { return false }
            let l = sy_counter_add_fetch(level + id, 1)
            let ms = UInt64(clamping: od.ejectionMs(level: Int(min(l, 64))))
            sy_counter_store(ejectedUntil + id, now + ms)
            sy_counter_store(lastEjectionMs + id, ms)
            sy_counter_store(failures + id, UInt64(od.consecutiveFailures - 1))
            sy_counter_add(ejectionCount + id, 1)
            return true
        }
    }

    // MARK: active (the checkers)

    /// A check changed the endpoint's verdict. A passing verdict also ends an ejection: the
    /// endpoint answers its checks again.
    func setChecked(_ id: Int, healthy: Bool) {
        guard valid(id) else { return }
        let was = sy_counter_load(down + id) == 0
        if was != healthy {
            sy_counter_store(down + id, healthy ? 0 : 1)
            sy_counter_add(transitionCount + id, 1)
        }
        if healthy && sy_counter_load(ejectedUntil + id) != 0 { sy_counter_store(ejectedUntil + id, 0) }
    }

    /// A check passed while the endpoint was healthy: an ejection (if any) ends.
    func checkPassed(_ id: Int) {
        guard valid(id) else { return }
        if sy_counter_load(down + id) == 0 && sy_counter_load(ejectedUntil + id) != 0 {
            sy_counter_store(ejectedUntil + id, 0)
        }
    }

    /// One check ran (its checker's loop only writes these).
    func countCheck(_ id: Int, passed: Bool) {
        guard valid(id) else { return }
        sy_counter_add((passed ? checksPassed : checksFailed) + id, 1)
    }

    /// The reason the newest check failed, or nil when it passed.
    func noteCheckFailure(_ id: Int, _ reason: String?) {
        checkFailures.withLock { all in
            if let reason { all[id] = reason } else if all[id] != nil { all[id] = nil }
        }
    }

    /// A check is no longer run for the endpoint: the check's verdict no longer counts.
    func forgetCheck(_ id: Int) {
        noteCheckFailure(id, nil)
        guard valid(id) else { return }
        if sy_counter_load(down + id) != 0 { sy_counter_store(down + id, 0) }
    }

    // MARK: reading

    public func health(endpoint id: Int) -> EndpointHealth {
        guard valid(id) else { return .healthy }
        if sy_counter_load(down + id) != 0 { return .unhealthy }
        if sy_counter_load(ejectedUntil + id) > clock() { return .ejected }
        return .healthy
    }

    public func isAvailable(endpoint id: Int) -> Bool { isAvailable(id, now: clock()) }

    /// Milliseconds until an ejection ends (0: not ejected).
    public func ejectionRemainingMs(endpoint id: Int) -> UInt64 {
        guard valid(id) else { return 0 }
        let until = sy_counter_load(ejectedUntil + id)
        let now = clock()
        return until > now ? until - now : 0
    }

    public func ejections(endpoint id: Int) -> UInt64 { valid(id) ? sy_counter_load(ejectionCount + id) : 0 }
    public func transitions(endpoint id: Int) -> UInt64 { valid(id) ? sy_counter_load(transitionCount + id) : 0 }
    public func lastEjectionMs(endpoint id: Int) -> UInt64 { valid(id) ? sy_counter_load(lastEjectionMs + id) : 0 }
    public func checks(endpoint id: Int, passed: Bool) -> UInt64 {
        valid(id) ? sy_counter_load((passed ? checksPassed : checksFailed) + id) : 0
    }
    /// Why the endpoint's newest health check failed (nil: it passed, or none ran).
    public func checkFailure(endpoint id: Int) -> String? { checkFailures.withLock { $0[id] } }
    public func consecutiveFailures(endpoint id: Int) -> UInt64 { valid(id) ? sy_counter_load(failures + id) : 0 }
}
