// The byte stream under a connection, and the only code in Proxy that reads or writes a
// connection's socket. It keeps what it last learned of the socket's readiness: the loop's
// events set it, a call that would block clears it. Plain TCP today; a TLS kind goes beside it
// and simply offers no splice (its bytes must pass through user space to be encrypted).
import Glibc
import Reactor

struct Transport {
    /// The descriptor registered with the loop (-1 before connecting and after closing).
    private(set) var fd: Int32 = -1
    var canRead = false
    var canWrite = false
    /// The peer's FIN (or a hang-up) was reported: reading continues until it is seen.
    var peerFinished = false

    init() {}

    init(fd: Int32, writable: Bool) {
        self.fd = fd
        canWrite = writable
    }

    @inline(__always) var isOpen: Bool { fd >= 0 }

    /// Whether body bytes may move socket -> pipe -> socket in the kernel.
    @inline(__always) var canSplice: Bool { true }

    /// Takes in an event's readiness bits (`PollEvents`).
    @inline(__always)
    mutating func take(events: UInt32) {
        if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 { canRead = true }
        if events & (PollEvents.peerClosed | PollEvents.hangUp) != 0 { peerFinished = true }
        if events & PollEvents.output != 0 { canWrite = true }
    }

    /// Reads into `buffer` after its written bytes, at most `space` bytes. A short read drained
    /// the socket (edge-triggered epoll reports new data), unless the peer's FIN came with it:
    /// that end of stream is read next.
    @inline(__always)
    mutating func read(into buffer: inout ByteBuffer, space: Int) throws(SystemError) -> IOResult {
        let r = try Sys.read(fd, buffer.writePointer, space)
        switch r {
        case .wouldBlock:
            canRead = false
        case .done(let n):
            buffer.writer += n
            if n > 0 && n < space && !peerFinished { canRead = false }
        }
        return r
    }

    /// Reads into raw memory (bytes that are thrown away).
    @inline(__always)
    mutating func read(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        let r = try Sys.read(fd, p, n)
        if r == .wouldBlock { canRead = false }
        return r
    }

    /// Writes two regions with one call (a head and body bytes); either may be empty.
    @inline(__always)
    mutating func write(_ p1: UnsafeRawPointer?, _ n1: Int, _ p2: UnsafeRawPointer?, _ n2: Int) throws(SystemError) -> IOResult {
        let r = try Sys.writev2(fd, p1, n1, p2, n2)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Writes up to `count` regions with one call.
    @inline(__always)
    mutating func write(_ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemError) -> IOResult {
        let r = try Sys.writev(fd, iov, count)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Moves up to `n` bytes from this socket into a pipe. A pipe fills by its 16 buffers, not
    /// by bytes: a body sent in small segments fills it with a few KiB, and then "would block"
    /// says nothing about the socket. Only with the pipe empty does it mean the socket is
    /// drained (taken for drained while megabytes waited, a body stalled until the idle timeout).
    @inline(__always)
    mutating func splice(toPipe pipeWrite: Int32, _ n: Int, pipeEmpty: Bool) throws(SystemError) -> IOResult {
        let r = try Sys.splice(fd, pipeWrite, n)
        if r == .wouldBlock && pipeEmpty { canRead = false }
        return r
    }

    /// Moves up to `n` bytes from a pipe onto this socket.
    @inline(__always)
    mutating func splice(fromPipe pipeRead: Int32, _ n: Int) throws(SystemError) -> IOResult {
        let r = try Sys.splice(pipeRead, fd, n)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Forgets the descriptor (the loop closed it).
    @inline(__always)
    mutating func closed() {
        fd = -1
        canRead = false
        canWrite = false
    }
}
