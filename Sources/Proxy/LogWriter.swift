// The one thread that writes log lines: event loops fill chunks of bytes of their own (a
// `LogChannel` each per log) and hand full ones over; this thread writes them out and hands
// them back. Bounded: a loop whose chunks are all waiting to be written drops the line and
// counts it, so a slow disk or a stuck pipe never holds a request. SIGUSR1 reopens the files
// (LogFile opens them).
import Dispatch
import Glibc
import Reactor
import Synchronization

public final class LogWriter: @unchecked Sendable {
    public enum Target: Sendable, Equatable {
        case stdout, stderr
        case file(String)
    }

    /// Where each log goes: the access log (if any) and the error log (stderr).
    final class Sink: @unchecked Sendable {
        let target: Target
        var fd: Int32

        init(target: Target, fd: Int32) {
            self.target = target
            self.fd = fd
        }
    }

    let access: Sink?
    let errors: Sink
    private let channels = Mutex<[LogChannel]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let reopening = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false
    /// Called (on the writer thread) with a problem worth an error-log line.
    let report: @Sendable (String) -> Void

    /// Opens the access log file now, so a bad path is a start-up error. `owner`: the account
    /// the process becomes after start (as root), which must be able to reopen the file.
    public init(accessLog: Target?, owner: LogOwner? = nil,
                report: @escaping @Sendable (String) -> Void = { ErrorLog.write($0) }) throws(SystemError) {
        self.report = report
        errors = Sink(target: .stderr, fd: 2)
        if let target = accessLog {
            access = Sink(target: target, fd: try Self.open(target, owner: owner, report: report))
        } else {
            access = nil
        }
    }

    static func open(_ target: Target, owner: LogOwner? = nil, report: (String) -> Void) throws(SystemError) -> Int32 {
        switch target {
        case .stdout: return 1
        case .stderr: return 2
        case .file(let path): return try LogFile.open(path, owner: owner, report: report)
        }
    }

    func register(_ c: LogChannel) { channels.withLock { $0.append(c) } }

    /// Chunks are waiting (called by a loop after handing one over).
    func notify() { wake.signal() }

    public func start() {
        guard !started else { return }
        started = true
        _ = LoopThread.start { [self] in run() }
    }

    /// SIGUSR1: the access log file is opened again by its path (after logrotate moved it).
    public func reopen() {
        reopening.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Writes what the loops have handed over and ends the thread; waits at most `timeoutMs`
    /// (a log on a pipe nobody reads would hold the exit for ever).
    public func stop(timeoutMs: Int = 2000) {
        guard started, !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        _ = finished.wait(timeout: .now() + .milliseconds(timeoutMs))
    }

    private func run() {
        while true {
            _ = wake.wait(timeout: .now() + .milliseconds(250))
            if reopening.exchange(false, ordering: .acquiringAndReleasing) { reopenFiles() }
            let stop = stopping.load(ordering: .acquiring)
            let all = channels.withLock { $0 }
            for c in all {
                // After `stop`, the loops have ended: their partly filled chunks are taken too.
                if stop { c.handOffFromAnyThread() }
                while let chunk = c.takeFull() {
                    write(chunk, to: c.toErrors ? errors : access)
                    c.giveBack(chunk)
                }
            }
            if stop {
                finished.signal()
                return
            }
        }
    }

    private func write(_ chunk: LogChunk, to sink: Sink?) {
        guard let sink else { return }
        var off = 0
        while off < chunk.count {
            let n = Glibc.write(sink.fd, chunk.base + off, chunk.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                return   // a full disk or a closed pipe: these lines are lost
            }
            off += n
        }
    }

    private func reopenFiles() {
        guard let access, case .file(let path) = access.target else { return }
        do throws(SystemError) {
            let fd = try Self.open(.file(path), report: report)
            let old = access.fd
            access.fd = fd
            Glibc.close(old)
            report("reopened the access log \(path)")
        } catch {
            // As the service user, a directory it cannot write is the usual reason.
            report("cannot reopen the access log \(path) as uid \(geteuid()): \(error); still writing to the file opened before")
        }
    }
}

/// A block of log bytes on its way from a loop to the writer.
final class LogChunk: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }
}

/// One loop's bytes for one log. The loop appends to its current chunk alone; the lock is
/// taken only to hand a chunk over or take an empty one (once per chunk, not per line).
final class LogChannel: @unchecked Sendable {
    let toErrors: Bool
    private let chunkBytes: Int
    private let maxChunks: Int
    private unowned let writer: LogWriter
    /// Loop thread only (and the writer once the loop has ended).
    private var current: LogChunk?
    private struct Queues {
        var full: [LogChunk] = []
        var free: [LogChunk] = []
        var allocated = 0
    }
    private let queues = Mutex(Queues())

    init(writer: LogWriter, toErrors: Bool, chunkBytes: Int, maxChunks: Int) {
        self.writer = writer
        self.toErrors = toErrors
        self.chunkBytes = chunkBytes
        self.maxChunks = maxChunks
        writer.register(self)
    }

    var hasPending: Bool { (current?.count ?? 0) > 0 }

    /// Room for `n` bytes in the current chunk (handing it over when full); nil when every chunk
    /// is waiting for the writer (the line is dropped).
    @inline(__always)
    func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8>? {
        if let c = current, c.capacity - c.count >= n { return c.base + c.count }
        guard n <= chunkBytes else { return nil }
        handOff()
        guard let c = current, c.capacity - c.count >= n else { return nil }
        return c.base + c.count
    }

    /// Commits `n` bytes written at `reserve`'s pointer.
    @inline(__always)
    func commit(_ n: Int) { current!.count += n }

    /// Hands the current chunk (if it holds anything) to the writer and takes an empty one.
    func handOff() {
        let give = (current?.count ?? 0) > 0 ? current : nil
        if give == nil && current != nil { return }
        current = queues.withLock { q -> LogChunk? in
            if let give { q.full.append(give) }
            if let c = q.free.popLast() { return c }
            if q.allocated < maxChunks {
                q.allocated += 1
                return LogChunk(capacity: chunkBytes)
            }
            return nil
        }
        if give != nil { writer.notify() }
    }

    /// The writer, after the loop has stopped.
    func handOffFromAnyThread() {
        guard let c = current, c.count > 0 else { return }
        current = nil
        queues.withLock { $0.full.append(c) }
    }

    func takeFull() -> LogChunk? {
        queues.withLock { q in q.full.isEmpty ? nil : q.full.removeFirst() }
    }

    func giveBack(_ c: LogChunk) {
        c.count = 0
        queues.withLock { $0.free.append(c) }
    }
}

/// Error-log lines from the control plane and start-up: each one timestamped, written whole.
public enum ErrorLog {
    private static let lock = Mutex(())

    /// "2025-03-01T12:34:56.789Z switchyard: message"
    public static func write(_ message: String) {
        let line = "\(Timestamp.string()) switchyard: \(message)\n"
        lock.withLock { _ in
            var bytes = Array(line.utf8)
            bytes.withUnsafeMutableBytes { b in
                var off = 0
                while off < b.count {
                    let n = Glibc.write(2, b.baseAddress! + off, b.count - off)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }
                    off += n
                }
            }
        }
    }
}
