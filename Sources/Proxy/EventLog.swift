// Lines the data path writes about itself (a client that failed its TLS handshake, an upstream
// whose certificate did not verify): rare, so a lock is fine, and rate-limited per kind so a
// flood of bad clients costs one line a second, never a stall.
import Glibc
import Reactor
import Synchronization

public final class EventLog: Sendable {
    public typealias Sink = @Sendable (String) -> Void
    private struct Window { var startMs: UInt64 = 0; var lines = 0; var suppressed = 0 }
    private let sink: Mutex<Sink?>
    private let windows: Mutex<[String: Window]>
    /// Lines per kind per second.
    let perSecond: Int

    public init(perSecond: Int = 1) {
        self.perSecond = perSecond
        sink = Mutex(nil)
        windows = Mutex([:])
    }

    /// Where lines go; none until set.
    public func setSink(_ s: Sink?) { sink.withLock { $0 = s } }

    /// Writes `line` unless `kind` already had its share this second; the next line that gets
    /// through says how many were left out.
    public func write(kind: String, _ line: @autoclosure () -> String) {
        guard let s = sink.withLock({ $0 }) else { return }
        let now = Sys.monotonicMs()
        let suppressed: Int? = windows.withLock { all in
            var w = all[kind] ?? Window()
            if now >= w.startMs + 1_000 {
                let left = w.suppressed
                w = Window(startMs: now, lines: 1, suppressed: 0)
                all[kind] = w
                return left
            }
            if w.lines >= perSecond {
                w.suppressed += 1
                all[kind] = w
                return nil
            }
            w.lines += 1
            all[kind] = w
            return 0
        }
        guard let suppressed else { return }
        s(suppressed > 0 ? "\(line()) (\(suppressed) more like it in the last second)" : line())
    }
}
