// Signal handling: the main thread waits for the signals with sigwait and runs their handlers on
// a background queue. No signal is lost between registering a handler and being ready for it:
// from `on` onwards the signals are blocked, so they stay pending until `waitForever` takes them.
// (Dispatch signal sources lose one sent in the window before Dispatch has armed them, and
// dispatchMain() parks the main thread with every signal unblocked.)
import Dispatch
import Glibc

enum Signals {
    nonisolated(unsafe) private static var handlers: [Int32: @Sendable (Int32) -> Void] = [:]
    nonisolated(unsafe) private static var waited = sigset_t()
    nonisolated(unsafe) fileprivate static var waitingThread = pthread_self()

    /// Runs `handler` on a background queue for each of `signals` once `waitForever` runs. Call
    /// on the thread that will call `waitForever` (the main thread).
    static func on(_ signals: [Int32], _ handler: @escaping @Sendable (Int32) -> Void) {
        if handlers.isEmpty { sigemptyset(&waited) }
        waitingThread = pthread_self()
        for s in signals {
            handlers[s] = handler
            sigaddset(&waited, s)
        }
        // Threads started from now on inherit the blocked mask. Those started before do not
        // block the signals: one they catch is sent on to the waiting thread.
        pthread_sigmask(SIG_BLOCK, &waited, nil)
        for s in signals { signal(s, forwardToWaitingThread) }
    }

    static func exitOnTerminate() {
        signal(SIGPIPE, SIG_IGN)
        on([SIGTERM, SIGINT]) { _ in exit(0) }
    }

    /// Takes the signals registered with `on`, for ever (in place of dispatchMain()).
    static func waitForever() -> Never {
        while true {
            var caught: Int32 = 0
            guard sigwait(&waited, &caught) == 0, let handler = handlers[caught] else { continue }
            let signal = caught
            DispatchQueue.global().async { handler(signal) }
        }
    }
}

/// A signal handler (async-signal-safe: one tgkill).
private func forwardToWaitingThread(_ signal: Int32) {
    pthread_kill(Signals.waitingThread, signal)
}
