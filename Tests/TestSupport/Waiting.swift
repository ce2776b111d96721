// Waiting on a condition instead of sleeping for a fixed window: a bounded poll on the monotonic
// clock. A loaded machine (four builds on two cores) only makes a wait longer, never wrong.
import Glibc

/// Polls `condition` every `interval` seconds until it holds or `timeout` seconds have passed;
/// whether it held. The condition is asked once more at the deadline, so a slow last poll is
/// not taken for a failure.
@discardableResult
public func waitUntil(timeout: Double = 10, interval: Double = 0.005, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = monotonicSeconds() + timeout
    while monotonicSeconds() < deadline {
        if try condition() { return true }
        usleep(UInt32(interval * 1_000_000))   // the poll period, not a window the test relies on
    }
    return try condition()
}

/// Seconds on the monotonic clock (not moved by changes to the wall clock).
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
