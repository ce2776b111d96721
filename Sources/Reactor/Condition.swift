// A lock with a condition variable, on pthreads, for the control plane's background threads
// (the fleet's watch and membership): no Foundation, whose thread and lock classes bring pages
// of their library into every process that uses them. Waits are bounded by the monotonic clock.
import Glibc

public final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (the lock held) until signalled or `deadline` (`Condition.now()` seconds) passes.
    public func wait(until deadline: Double) {
        let d = max(0, deadline)
        var ts = timespec(tv_sec: Int(d), tv_nsec: Int((d - Double(Int(d))) * 1e9))
        _ = pthread_cond_timedwait(cond, mutex, &ts)
    }

    public func broadcast() { pthread_cond_broadcast(cond) }

    /// Monotonic seconds (the clock the waits use).
    public static func now() -> Double { Double(Sys.monotonicNs()) / 1e9 }
}
