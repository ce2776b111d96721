// One shadow request: its bytes (kept whole until answered, so a copy whose connection ended
// before it was processed can be sent again on another), the rules for sending it again, and
// its one outcome, counted alike in the totals, the labelled series and the comparison.
import HTTP1
import Reactor
import Routing

final class MirrorCopy {
    unowned(unsafe) let worker: Worker
    let gate: MirrorGate
    let endpoint: Endpoint
    let maxBodyBytes: Int
    let method: HTTP1.Method
    let hasBody: Bool
    var data = ByteBuffer()
    /// Bytes of `data` already written on the current connection.
    var sent = 0
    var bodyBytes = 0
    private(set) var bodyComplete: Bool
    var finished = false
    var retried = false
    /// Waiting to be written after the current batch of events (Worker.flushMirrors).
    var dirty = false
    /// The connection carrying this copy; cleared whenever the copy leaves it.
    var connection: UpstreamConnection?

    /// The {route,shadow} series its outcome is counted in.
    let series: Int
    /// Its side of a shadow comparison (nil: its mirror does not compare).
    var compare: ShadowSide?
    /// A copy with a body to a signing shadow: its head (the first `headBytes` of `data`) is held
    /// back, the copy neither dispatched nor written, until the whole body is in and the head is
    /// signed over it (`chunked`: the body goes as its payload, with a length).
    private var held: (signing: UpstreamSigning, headBytes: Int, chunked: Bool)?

    init(worker: Worker, gate: MirrorGate, endpoint: Endpoint, maxBodyBytes: Int, bodyExpected: Bool, method: HTTP1.Method,
         series: Int) {
        self.worker = worker
        self.series = series
        self.gate = gate
        self.endpoint = endpoint
        self.maxBodyBytes = maxBodyBytes
        self.hasBody = bodyExpected
        self.bodyComplete = !bodyExpected
        self.method = method
    }

    var fullySent: Bool { bodyComplete && sent == data.readableCount }

    func appendBody(_ bytes: UnsafeRawBufferPointer) {
        guard !finished else { return }
        if bodyBytes + bytes.count > maxBodyBytes {
            cancel(counting: .mirrorsSkippedBody)
            return
        }
        guard gate.admits(bytes: bytes.count) else {
            // The shadow upstream's buffer budget is spent: this copy gives way.
            cancel(counting: .mirrorsDropped)
            return
        }
        bodyBytes += bytes.count
        gate.bytes += bytes.count
        data.append(bytes, pool: worker.buffers)
        markDirty()
    }

    func bodyDone() {
        bodyComplete = true
        if let h = held {
            held = nil
            return signAndDispatch(h)
        }
        markDirty()
    }

    /// Whether its head waits for its whole body (`held`).
    var waitsForBody: Bool { held != nil && !finished }

    /// Holds the head written so far until the body is whole (`held`).
    func holdForSigning(_ signing: UpstreamSigning, chunked: Bool) {
        held = (signing, data.readableCount, chunked)
    }

    /// The body is whole: the head is signed over it, and the copy goes out.
    private func signAndDispatch(_ h: (signing: UpstreamSigning, headBytes: Int, chunked: Bool)) {
        guard !finished else { return }
        let before = data.readableCount
        var head = ByteBuffer()
        head.append(UnsafeRawBufferPointer(start: data.readPointer, count: h.headBytes), pool: worker.buffers)
        data.consume(h.headBytes)
        let length = h.chunked ? data.dechunk(count: data.readableCount) : data.readableCount
        let body = UnsafeRawBufferPointer(start: data.readPointer, count: length)
        worker.sign(&head, with: h.signing, body: body)
        head.append(body, pool: worker.buffers)
        data.release(to: worker.buffers)
        data = head
        gate.bytes += data.readableCount - before
        worker.dispatchCopy(self)
    }

    /// Its connection writes what is new after the current batch of events.
    func markDirty() {
        if !dirty && connection != nil {
            dirty = true
            worker.mirrorDirty.append(self)
        }
    }

    /// The copy cannot be completed: the primary ended before its body did (a failure), or the
    /// body went over a limit (counted as skipped or dropped instead).
    func cancel(counting outcome: Counter = .mirrorsFailed) {
        guard !finished else { return }
        connection?.cancel(self)
        finish(outcome)
    }

    /// Its connection ended before the answer. A copy not written there cannot have been
    /// processed: it always goes again. One written may have been: only an idempotent method
    /// (RFC 9110 9.2.2) goes again, once; any other (a POST, a PATCH) fails rather than reach
    /// the shadow twice.
    func connectionLost() {
        guard !finished else { return }
        if sent == 0 {
            worker.dispatchCopy(self)
        } else if !retried && method.isIdempotent {
            retried = true
            worker.dispatchCopy(self)
        } else {
            finish(.mirrorsFailed)
        }
    }

    /// Ends the copy, counted once as `outcome`: completed, failed, dropped or skipped.
    func finish(_ outcome: Counter) {
        guard !finished else { return }
        finished = true
        connection = nil
        gate.inFlight -= 1
        gate.bytes -= data.readableCount
        worker.stats.add(outcome)
        let labelled: MirrorOutcome = switch outcome {
        case .mirrorsCompleted: .completed
        case .mirrorsDropped: .dropped
        case .mirrorsSkippedBody: .skipped
        default: .failed
        }
        worker.metrics.mirrors.add(series, labelled.rawValue)
        data.release(to: worker.buffers)
        if let side = compare {
            compare = nil
            worker.shadowCopyFinished(side, completed: labelled == .completed, counted: labelled == .completed || labelled == .failed)
        }
    }
}
