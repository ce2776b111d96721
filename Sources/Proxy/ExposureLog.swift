// An experiment's exposure log: one JSON line per exposure, in the order the warehouse reads
// them (GrowthBook's experiment-assignment query: timestamp, experiment, user, variation).
// Written off the request path: a worker appends the line to a bounded buffer and a serial queue
// writes it out; a full buffer drops the line and counts it, so a slow disk never holds a
// request. SIGUSR1 reopens the file by its path (`reopen`), like the access log.
import Dispatch
import Glibc
import Synchronization

public final class ExposureLog: Sendable {
    public let path: String
    /// Bytes waiting to be written at most; beyond, lines are dropped (counted).
    public static let maxPendingBytes = 1 << 20
    /// How long a first line waits for others before the batch is written.
    static let batchMs = 5

    private struct Pending {
        var bytes: [UInt8] = []
        var lines = 0
        var scheduled = false
        var reopen = false
        /// The buffer the last flush wrote, kept for its capacity.
        var spare: [UInt8] = []
    }
    private let pending = Mutex(Pending())
    private let queue = DispatchQueue(label: "switchyard.exposures")
    /// The descriptor, used on `queue` only (-1: not open yet, or failed: opened again next time).
    private let fd = Mutex<Int32>(-1)
    private let linesWritten = Atomic<UInt64>(0)
    private let linesDropped = Atomic<UInt64>(0)
    private let openFailing = Atomic<Bool>(false)
    private let report: @Sendable (String) -> Void

    public init(path: String, report: @escaping @Sendable (String) -> Void = { ErrorLog.write($0) }) {
        self.path = path
        self.report = report
    }

    deinit {
        let f = fd.withLock { $0 }
        if f > 2 { close(f) }
    }

    public var written: UInt64 { linesWritten.load(ordering: .relaxed) }
    public var dropped: UInt64 { linesDropped.load(ordering: .relaxed) }

    /// Queues one line (its newline included). False when it was dropped.
    @discardableResult
    func append(_ line: UnsafeRawBufferPointer) -> Bool {
        let schedule: Bool? = pending.withLock { p in
            guard p.bytes.count + line.count <= Self.maxPendingBytes else { return nil }
            p.bytes.append(contentsOf: line)
            p.lines += 1
            defer { p.scheduled = true }
            return !p.scheduled
        }
        guard let schedule else {
            linesDropped.add(1, ordering: .relaxed)
            return false
        }
        // A batch every few milliseconds: one write for many lines when new users pour in.
        if schedule { queue.asyncAfter(deadline: .now() + .milliseconds(Self.batchMs)) { [self] in flush() } }
        return true
    }

    /// Opens the file again by its path before the next write (after logrotate moved it).
    public func reopen() {
        let schedule = pending.withLock { p in
            p.reopen = true
            defer { p.scheduled = true }
            return !p.scheduled
        }
        if schedule { queue.async { [self] in flush() } }
    }

    /// Writes every line queued so far, now (tests, shutdown): a batch still waiting for its
    /// few milliseconds would otherwise be lost when the process exits.
    public func drain() { queue.sync { flush() } }

    private func flush() {
        // Two buffers take turns, so neither is grown again after the first batches.
        let (taken, lines, reopen) = pending.withLock { p -> ([UInt8], Int, Bool) in
            var taken: [UInt8] = []
            swap(&taken, &p.spare)
            swap(&taken, &p.bytes)
            defer {
                p.lines = 0
                p.scheduled = false
                p.reopen = false
            }
            return (taken, p.lines, p.reopen)
        }
        var bytes = taken
        defer {
            bytes.removeAll(keepingCapacity: true)
            pending.withLock { p in swap(&p.spare, &bytes) }
        }
        fd.withLock { f in
            if reopen && f > 2 {
                close(f)
                f = open()
                if f >= 0 { report("reopened the exposure log \(path)") }
            }
            if f < 0 { f = open() }
            guard f >= 0, !bytes.isEmpty else { return }
            if writeAll(f, bytes) { linesWritten.add(UInt64(lines), ordering: .relaxed) }
        }
    }

    private func open() -> Int32 {
        switch path {
        case "stdout": return 1
        case "stderr": return 2
        default:
            do {
                let f = try LogFile.open(path, owner: nil, report: report)
                if openFailing.exchange(false, ordering: .relaxed) { report("exposure log \(path): open again") }
                return f
            } catch {
                // Once per run of failures: each batch tries again, and lines meanwhile are lost.
                if !openFailing.exchange(true, ordering: .relaxed) {
                    report("exposure log \(path): \(error); its lines are lost until it can be opened")
                }
                return -1
            }
        }
    }

    private func writeAll(_ f: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(f, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    report("exposure log \(path): write failed (errno \(errno)); \(buffer.count - offset) bytes lost")
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
