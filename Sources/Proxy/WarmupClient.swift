// Warm-up before a flip, as an ordinary HTTP client on an event loop: GETs to the idle color's
// endpoints (waking cold function instances), one at a time, each on its own connection, with
// the configured timeout. The control plane is told the outcome; it never waits on a socket.
import Glibc
import HTTP1
import Reactor

/// Where one warm-up GET goes.
public struct WarmupTarget: Sendable {
    public let address: SocketAddress
    /// The Host header (the endpoint as written in the config).
    public let host: String
    /// Set when the pool speaks TLS, with the name it is reached by (SNI, verification).
    public let tls: UpstreamTLS?
    public let tlsName: String
    public init(address: SocketAddress, host: String, tls: UpstreamTLS? = nil, tlsName: String = "") {
        self.address = address
        self.host = host
        self.tls = tls
        self.tlsName = tlsName
    }
}

/// What a warm-up found: the latency of each completed request, in order, and why it stopped
/// early (nil when every request got an answer below 500).
public struct WarmupResult: Sendable {
    public var latenciesNs: [UInt64] = []
    public var failure: String?
    public init() {}
}

final class WarmupClient: Pollable {
    private let worker: Worker
    private let targets: [WarmupTarget]
    private let path: String
    private let requests: Int
    private let timeoutMs: Int
    private let done: @Sendable (WarmupResult) -> Void
    private var result = WarmupResult()

    private var transport = Transport()
    private var connecting = false
    private var request: [UInt8] = []
    private var sent = 0
    private var inBuf = ByteBuffer()
    private var framer: ResponseFramer
    private var status = 0
    private var startedNs: UInt64 = 0
    private var index = 0

    init(worker: Worker, targets: [WarmupTarget], path: String, requests: Int, timeoutMs: Int,
         done: @escaping @Sendable (WarmupResult) -> Void) {
        self.worker = worker
        self.targets = targets
        self.path = path
        self.requests = requests
        self.timeoutMs = timeoutMs
        self.done = done
        self.framer = ResponseFramer(limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    /// Starts the first request. Runs on the worker's loop.
    func start() {
        guard !targets.isEmpty else { return finish(failure: "the idle color has no serving endpoint") }
        nextRequest()
    }

    private var target: WarmupTarget { targets[index % targets.count] }

    private func nextRequest() {
        if index == requests { return finish(failure: nil) }
        let t = target
        request = Array("GET \(path) HTTP/1.1\r\nHost: \(t.host)\r\nUser-Agent: switchyard-warmup\r\nX-Switchyard-Warmup: 1\r\nConnection: close\r\n\r\n".utf8)
        sent = 0
        status = 0
        framer.reset(requestMethod: .get)
        startedNs = Sys.monotonicNs()
        loop.setDeadline(self, afterMs: UInt64(timeoutMs))
        do {
            let (transport, connected) = try Dialer.open(self, to: t.address)
            self.transport = transport
            if let tls = t.tls {
                guard let session = tls.client.connect(fd: transport.fd, host: t.tlsName, resume: nil) else {
                    return finish(failure: "cannot start TLS with \(t.host)")
                }
                self.transport.tls = session
            }
            connecting = !connected
            if connected { send() }
        } catch {
            fail("connect: \(String(cString: strerror(error.errno)))")
        }
    }

    override func handleEvents(_ events: UInt32) {
        transport.take(events: events)
        if connecting {
            guard events & (PollEvents.output | PollEvents.error | PollEvents.hangUp) != 0 else { return }
            if let e = Dialer.connectError(transport) {
                return fail("connect: \(String(cString: strerror(e)))")
            }
            connecting = false
        }
        if transport.canWrite && sent < request.count { send() }
        if fd >= 0 && transport.canRead { receive() }
    }

    override func timerFired(now: UInt64) {
        fail(connecting ? "connect timed out after \(timeoutMs) ms" : "no complete answer within \(timeoutMs) ms")
    }

    private func send() {
        while sent < request.count && transport.canWrite {
            let result = request.withUnsafeBytes { raw in
                Result { () throws(SystemError) -> IOResult in try transport.write(raw.baseAddress! + sent, raw.count - sent, nil, 0) }
            }
            switch result {
            case .failure(let error): return fail(transport.tlsFailure.map { "TLS: \($0)" } ?? "send: \(String(cString: strerror(error.errno)))")
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
                return fail(transport.tlsFailure.map { "TLS: \($0)" } ?? "recv: \(String(cString: strerror(error.errno)))")
            }
            switch r {
            case .wouldBlock:
                return
            case .done(0):
                if status > 0 && framer.endOfStream() { return answered() }
                return fail(status == 0 ? "connection closed before a response head"
                                        : "connection closed before the end of the response")
            case .done:
                if frame() { return }
            }
        }
    }

    /// Frames what is buffered; true when the request ended (answered or failed).
    private func frame() -> Bool {
        while !inBuf.isEmpty || framer.isComplete {
            switch framer.feed(inBuf.readableBytes) {
            case .needMore:
                return false
            case .failed(let e):
                fail("invalid response: \(e.reason)")
                return true
            case .interim(let length):
                inBuf.consume(length)
            case .head(let length):
                status = framer.head.status
                inBuf.consume(length)
                if status >= 500 {
                    finish(failure: "\(target.host) answered GET \(path) with \(status)", prefixed: false)
                    return true
                }
                if framer.isComplete {
                    answered()
                    return true
                }
            case .body(let count, let complete):
                inBuf.consume(count)
                if complete {
                    answered()
                    return true
                }
                if count == 0 { return false }
            }
        }
        return false
    }

    private func answered() {
        result.latenciesNs.append(Sys.monotonicNs() - startedNs)
        closeConnection()
        index += 1
        nextRequest()
    }

    private func fail(_ why: String) {
        finish(failure: why, prefixed: true)
    }

    private func finish(failure: String?, prefixed: Bool = true) {
        closeConnection()
        loop.cancelDeadline(self)
        inBuf.release(to: worker.buffers)
        if let failure { result.failure = prefixed && !targets.isEmpty ? "\(target.host) GET \(path): \(failure)" : failure }
        let report = result
        done(report)
    }

    private func closeConnection() {
        if fd >= 0 {
            loop.close(self)
            transport.closed()
        }
        inBuf.release(to: worker.buffers)
        connecting = false
    }
}

extension ProxyServer {
    /// Runs a warm-up on the first worker's loop; `done` is called on that loop's thread.
    public func warmUp(_ targets: [WarmupTarget], path: String, requests: Int, timeoutMs: Int,
                       done: @escaping @Sendable (WarmupResult) -> Void) {
        let w = firstWorker
        nonisolated(unsafe) let worker = w
        w.loop.execute {
            WarmupClient(worker: worker, targets: targets, path: path, requests: requests, timeoutMs: timeoutMs, done: done).start()
        }
    }
}
