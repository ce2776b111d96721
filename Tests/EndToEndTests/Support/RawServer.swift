// In-test upstreams for answers `switchyard echo` cannot give (a close right after accept, a
// malformed or contradictory response, a death mid-body): a thread per connection runs the
// test's handler over a blocking socket; the server counts what it accepted.
import Foundation
import Glibc
import TestSupport

/// One accepted connection as a handler sees it.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        Sockets.setTimeouts(fd, seconds: 5)
    }

    /// Reads through the end of a request head ("\r\n\r\n"); nil when the peer closed first.
    /// Returns the head; body bytes already read stay buffered.
    func readHead() -> String? {
        while true {
            if let end = Sockets.headEnd(buffer).map({ $0 + 4 }) {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end)
                return head
            }
            var chunk = [UInt8](repeating: 0, count: 16384)
            guard let n = try? chunk.withUnsafeMutableBytes({ raw in try Sockets.receive(fd, into: raw) })
            else { return nil }
            buffer += chunk[0..<n]
        }
    }

    /// The Content-Length body of the request whose `head` was just read (none: empty); nil
    /// when the peer closed first.
    func readBody(after head: String) -> [UInt8]? {
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var body = takeBuffered()
        while body.count < length {
            var chunk = [UInt8](repeating: 0, count: 4096)
            guard let n = try? chunk.withUnsafeMutableBytes({ try Sockets.receive(fd, into: $0) }), n > 0 else { return nil }
            body += chunk[0..<n]
        }
        return body
    }

    /// The bytes read past the last head, handed over (the buffer is left empty).
    func takeBuffered() -> [UInt8] {
        defer { buffer.removeAll() }
        return buffer
    }

    /// Sends bytes; false when the peer is gone.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { Sockets.send(fd, bytes) }

    /// Makes the close that follows the handler a reset (RST) instead of an orderly end.
    func resetOnClose() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    /// Waits until the peer closes or `timeout` passes.
    func waitForPeerClose(timeout: Double) {
        Sockets.setTimeouts(fd, seconds: timeout)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while (try? chunk.withUnsafeMutableBytes({ raw in try Sockets.receive(fd, into: raw) })) != nil {}
    }
}

final class RawServer: @unchecked Sendable {
    let port: UInt16
    private let listenFd: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var heads: [String] = []
    private var open: Set<Int32> = []
    private var stopped = false
    private let handler: @Sendable (RawConnection, RawServer) -> Void

    /// Starts accepting on 127.0.0.1 (a kernel-chosen port, or `port`: a server started again
    /// where a stopped one listened); each connection runs `handler` on its own thread and is
    /// closed when the handler returns.
    init(port: UInt16 = 0, _ handler: @escaping @Sendable (RawConnection, RawServer) -> Void) throws {
        let (fd, port) = try Sockets.bound(listen: true, port: port, reuseAddress: true)
        listenFd = fd
        self.port = port
        self.handler = handler
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Connections accepted so far.
    var acceptedCount: Int { lock.withLock { accepted } }

    /// Request heads handlers recorded with `record`.
    var recordedHeads: [String] { lock.withLock { heads } }

    func record(_ head: String) { lock.withLock { heads.append(head) } }

    private func acceptLoop() {
        while true {
            let c = Glibc.accept(listenFd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                break   // shut down by stop()
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            let admitted = lock.withLock { () -> Bool in
                if stopped { return false }
                accepted += 1
                open.insert(c)
                return true
            }
            guard admitted else {
                Glibc.close(c)
                break
            }
            let thread = Thread { [self] in
                handler(RawConnection(fd: c), self)
                lock.withLock { _ = open.remove(c) }
                Glibc.close(c)
            }
            thread.start()
        }
        Glibc.close(listenFd)
    }

    /// Stops accepting and wakes handlers blocked on their sockets.
    func stop() {
        // Under the lock: a handler's socket is closed only after leaving `open`.
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            _ = Glibc.shutdown(listenFd, Int32(SHUT_RDWR))
            for fd in open { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }
}
