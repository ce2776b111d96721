// One control client: lines in through a Dispatch read source, run on the state queue in order
// (pipelining), replies out in the same order; closing aborts its open transaction. It records
// when it last sent a command, so the server can close it when idle or short of slots.
import Dispatch
import Glibc
import Runtime

final class ControlConnection: @unchecked Sendable {
    /// Reading pauses at this many commands awaiting their reply, and resumes at half.
    static let maxPending = 64
    /// ... or when this many reply bytes wait for the client to read them.
    static let maxOutput = 1 << 20

    private let fd: Int32
    private let engine: ControlEngine
    private let io: DispatchQueue
    private let session: ControlSession
    private let onClose: (ControlConnection) -> Void
    // Everything below is confined to `io`.
    private var framer = LineFramer()
    private let readSource: any DispatchSourceRead
    private let writeSource: any DispatchSourceWrite
    private var readPaused = false
    private var readDone = false
    private var writeArmed = false
    private var output: [UInt8] = []
    private var written = 0
    private var pending = 0
    /// Lines read but not yet run, and whether one is running.
    private var waiting: [LineFramer.Item] = []
    private var running = false
    private var quitting = false
    private var closed = false
    /// Cancel handlers left before the descriptor may be closed.
    private var openSources = 2
    /// When the last complete command line arrived (or the connection was accepted), in
    /// monotonic nanoseconds. Bytes of an unfinished line do not count: a client that trickles
    /// a line forever is idle.
    private(set) var lastCommand = DispatchTime.now().uptimeNanoseconds
    /// Whether its session had a transaction open after its last reply.
    private(set) var inTransaction = false

    init(fd: Int32, engine: ControlEngine, io: DispatchQueue, onClose: @escaping (ControlConnection) -> Void) {
        self.fd = fd
        self.engine = engine
        self.io = io
        self.onClose = onClose
        session = engine.makeSession()
        readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: io)
        writeSource = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: io)
    }

    func start() {
        let fd = self.fd
        // Strong captures: a source drops its handlers once cancelled, which ends the cycle.
        let release: @Sendable () -> Void = { [self] in
            openSources -= 1
            if openSources == 0 { Glibc.close(fd) }
        }
        readSource.setEventHandler { [self] in readAvailable() }
        readSource.setCancelHandler(handler: release)
        writeSource.setEventHandler { [self] in flush() }
        writeSource.setCancelHandler(handler: release)
        readSource.resume()
    }

    private func readAvailable() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !closed && !readDone && !readPaused {
            // errno is read right after the call, before anything else can change it.
            let (n, e) = chunk.withUnsafeMutableBytes { raw -> (Int, Int32) in
                let n = recv(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT))
                return (n, n < 0 ? errno : 0)
            }
            if n > 0 {
                let items = chunk.withUnsafeBytes { framer.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                for item in items { submit(item) }
                continue
            }
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { return }
            if n < 0 {
                close()
                return
            }
            // End of input: answer what was sent (a last line without its newline too), then close.
            if let last = framer.finish() { submit(last) }
            readDone = true
            stopReading()
            finishIfDone()
            return
        }
    }

    private func submit(_ item: LineFramer.Item) {
        guard !quitting else { return }
        lastCommand = DispatchTime.now().uptimeNanoseconds
        pending += 1
        if pending >= Self.maxPending { pauseReading() }
        waiting.append(item)
        runNext()
    }

    /// Runs the oldest waiting line once the one before it has been answered: replies keep the
    /// order of the lines, and a command that waits (a flip warming its color) holds only its
    /// own connection's later lines, never the state queue.
    private func runNext() {
        guard !running, !waiting.isEmpty else { return }
        running = true
        let item = waiting.removeFirst()
        let engine = self.engine
        let session = self.session
        engine.state.queue.async { [self] in
            let answer: @Sendable ((reply: ControlValue, close: Bool)?) -> Void = { [self] outcome in
                let bytes = outcome.map { ControlProtocol.line($0.reply) }
                let quit = outcome?.close ?? false
                let open = session.inTransaction
                io.async {
                    self.running = false
                    self.deliver(bytes, quit: quit, inTransaction: open)
                    self.runNext()
                }
            }
            switch item {
            case .line(let text):
                engine.execute(text, session: session, answer: answer)
            case .tooLong(let bytes):
                answer((ControlProtocol.failure(
                    "line too long: \(bytes) bytes, the limit is \(ControlProtocol.maxLineBytes); it was skipped"), false))
            }
        }
    }

    private func deliver(_ bytes: [UInt8]?, quit: Bool, inTransaction: Bool) {
        pending -= 1
        self.inTransaction = inTransaction
        guard !closed else { return }
        if let bytes, !quitting { output.append(contentsOf: bytes) }
        if quit && !quitting {
            quitting = true
            stopReading()
        }
        flush()
        if !closed && readPaused && pending <= Self.maxPending / 2 && output.count - written < Self.maxOutput {
            readPaused = false
            readSource.resume()
        }
        finishIfDone()
    }

    private func flush() {
        while !closed && written < output.count {
            let (n, e) = output.withUnsafeBytes { raw -> (Int, Int32) in
                let n = send(fd, raw.baseAddress! + written, raw.count - written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                return (n, n < 0 ? errno : 0)
            }
            if n > 0 {
                written += n
                continue
            }
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                if !writeArmed {
                    writeArmed = true
                    writeSource.resume()
                }
                if output.count - written >= Self.maxOutput { pauseReading() }
                return
            }
            close()
            return
        }
        guard !closed else { return }
        output.removeAll(keepingCapacity: output.count <= 65_536)
        written = 0
        if writeArmed {
            writeArmed = false
            writeSource.suspend()
        }
        finishIfDone()
    }

    private func finishIfDone() {
        if !closed && (readDone || quitting) && pending == 0 && written == output.count { close() }
    }

    private func pauseReading() {
        guard !readPaused && !readDone else { return }
        readPaused = true
        readSource.suspend()
    }

    private func stopReading() {
        readDone = true
        if readPaused {
            readPaused = false
            readSource.resume()
        }
        if !readSource.isCancelled { readSource.cancel() }
    }

    /// Open, with no command running and no reply waiting to be written.
    var isIdle: Bool { !closed && pending == 0 && written == output.count }

    /// Tells the client why (one error line, if the socket takes it now), then closes.
    func close(saying reason: String) {
        guard !closed else { return }
        let line = ControlProtocol.line(ControlProtocol.failure(reason))
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        close()
    }

    /// Closes now: replies not yet written are dropped, an open transaction is aborted.
    func close() {
        guard !closed else { return }
        closed = true
        if readPaused {
            readPaused = false
            readSource.resume()
        }
        readDone = true
        if !readSource.isCancelled { readSource.cancel() }
        // A suspended source never runs its cancel handler: resume it first.
        if !writeArmed {
            writeArmed = true
            writeSource.resume()
        }
        writeSource.cancel()
        let engine = self.engine
        let session = self.session
        engine.state.queue.async { engine.end(session) }
        onClose(self)
    }
}
