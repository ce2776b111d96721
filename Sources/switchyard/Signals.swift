// Signal handling through Dispatch sources, created in a nonisolated type so their handlers can
// run on any queue.
import Dispatch
import Glibc

enum Signals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Runs `handler` on a background queue for each of `signals` (their default action is
    /// disabled).
    static func on(_ signals: [Int32], _ handler: @escaping @Sendable (Int32) -> Void) {
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { handler(s) }
            src.resume()
            sources.append(src)
        }
    }

    static func exitOnTerminate() {
        signal(SIGPIPE, SIG_IGN)
        on([SIGTERM, SIGINT]) { _ in exit(0) }
    }
}
