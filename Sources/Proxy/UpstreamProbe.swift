// One request on a connection of its own, for the clients that judge an answer rather than
// relay it (health checks, warm-up): reached through Worker.dial like every upstream request
// (the endpoint's TLS policy, its name, its sessions), framed by the same ResponseFramer, and
// ended once with an outcome: the status (and, when asked, after the whole body), or why not.
import Glibc
import HTTP1
import Reactor
import TLS

final class UpstreamProbe: Pollable {
    enum Outcome {
        case answered(status: Int)
        case failed(String)
    }

    private unowned(unsafe) let worker: Worker
    private let target: UpstreamTarget
    private let request: [UInt8]
    private let timeoutMs: Int
    /// Read to the end of the body (a warm-up: the instance finishes its answer) or judge at
    /// the head (a health check: the status decides).
    private let wholeBody: Bool
    private var done: ((Outcome) -> Void)?

    private var transport = Transport()
    private var connecting = false
    private var sent = 0
    private var inBuf = ByteBuffer()
    private var framer: ResponseFramer
    private var status = 0
    private var tlsCounted = false
    /// A session the endpoint issued here, for a target without an endpoint id to resume with.
    private(set) var session: TLSSession?

    init(worker: Worker, target: UpstreamTarget, request: [UInt8], timeoutMs: Int, wholeBody: Bool,
         done: @escaping (Outcome) -> Void) {
        self.worker = worker
        self.target = target
        self.request = request
        self.timeoutMs = timeoutMs
        self.wholeBody = wholeBody
        self.done = done
        self.framer = ResponseFramer(limits: worker.settings.responseLimits)
        super.init(loop: worker.loop)
    }

    /// A GET with the headers every probe sends; `Connection: close`, so nothing is pooled.
    /// `extra`: whole header lines, as bytes (a set field's value need not be UTF-8).
    static func get(path: String, host: String, userAgent: String, extra: [UInt8] = []) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: \(userAgent)\r\n".utf8) + extra
            + Array("Connection: close\r\n\r\n".utf8)
    }

    /// Connects and sends; `resume`: a session to offer when the target has no endpoint id.
    func start(resume: TLSSession? = nil) {
        framer.reset(requestMethod: .get)
        loop.setDeadline(self, afterMs: UInt64(max(timeoutMs, 1)))
        do throws(DialFailure) {
            let (t, connected) = try worker.dial(self, target, resume: resume)
            transport = t
            connecting = !connected
            if connected { send() }
        } catch {
            finish(.failed(error.reason))
        }
    }

    /// Ends the probe without an outcome (its checker stopped).
    func cancel() {
        done = nil
        close()
    }

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        if connecting {
            guard events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 else { return }
            if let e = Dialer.connectError(transport) {
                return finish(.failed("connect: \(String(cString: strerror(e)))"))
            }
            connecting = false
            transport.canWrite = true
        }
        if transport.canWrite && sent < request.count { send() }
        if fd >= 0 && transport.canRead { receive() }
    }

    override func timerFired(now: UInt64) {
        finish(.failed(connecting ? "connect timed out after \(timeoutMs) ms"
                                  : transport.handshaking ? "TLS handshake timed out after \(timeoutMs) ms"
                                  : "no complete answer within \(timeoutMs) ms"))
    }

    private func send() {
        while fd >= 0 && sent < request.count && transport.canWrite {
            let result = request.withUnsafeBytes { raw in
                Result { () throws(SystemError) -> IOResult in try transport.write(raw.baseAddress! + sent, raw.count - sent, nil, 0) }
            }
            switch result {
            case .failure(let error): return finish(.failed(Worker.failureReason(transport, error, doing: "send")))
            case .success(.done(let n)): sent += n
            case .success(.wouldBlock): return
            }
        }
    }

    private func receive() {
        while fd >= 0 && transport.canRead {
            let space = inBuf.roomToRead(capacity: worker.buffers.blockSize, pool: worker.buffers)
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch {
                return finish(.failed(Worker.failureReason(transport, error, doing: "receive")))
            }
            switch r {
            case .wouldBlock:
                return
            case .done(0):
                if status > 0 && (!wholeBody || framer.isComplete || framer.endOfStream()) { return finish(.answered(status: status)) }
                return finish(.failed(status == 0 ? "connection closed before a response head"
                                                  : "connection closed before the end of the response"))
            case .done:
                if frame() { return }
            }
        }
    }

    /// Frames what is buffered; true when the probe ended.
    private func frame() -> Bool {
        while !inBuf.isEmpty {
            switch framer.feed(inBuf.readableBytes) {
            case .needMore:
                return false
            case .failed(let e):
                finish(.failed("invalid response: \(e.reason)"))
                return true
            case .interim(let length):
                inBuf.consume(length)
            case .head(let length):
                status = framer.head.status
                inBuf.consume(length)
                if !wholeBody || framer.isComplete {
                    finish(.answered(status: status))
                    return true
                }
            case .body(let count, let complete):
                inBuf.consume(count)
                if complete {
                    finish(.answered(status: status))
                    return true
                }
                if count == 0 { return false }
            }
        }
        return false
    }

    private func finish(_ outcome: Outcome) {
        close()
        let report = done
        done = nil
        // The owner lets go of this probe in `report`: it lives until the call returns.
        withExtendedLifetime(self) { report?(outcome) }
    }

    private func close() {
        loop.cancelDeadline(self)
        if fd >= 0 {
            if transport.tls != nil {
                if target.endpointID >= 0 {
                    worker.noteTLS(transport, endpoint: target.endpointID, counted: &tlsCounted)
                } else if let s = transport.tls?.takeSession() {
                    session = s
                }
                transport.closeNotify()
            }
            loop.close(self)
            transport.closed()
        }
        inBuf.release(to: worker.buffers)
        connecting = false
    }
}
