// The byte stream under a connection, and the only code in Proxy that reads or writes a
// connection's socket. Plain TCP today; a TLS kind goes beside it and simply offers no splice
// (its bytes must pass through user space to be encrypted).
import Glibc
import Reactor

struct Transport {
    /// The descriptor registered with the loop (-1 before connecting and after closing).
    private(set) var fd: Int32 = -1

    init() {}

    init(fd: Int32) { self.fd = fd }

    @inline(__always) var isOpen: Bool { fd >= 0 }

    /// Whether body bytes may move socket -> pipe -> socket in the kernel.
    @inline(__always) var canSplice: Bool { true }

    /// Reads into `buffer` after its written bytes, at most `space` bytes.
    @inline(__always)
    func read(into buffer: inout ByteBuffer, space: Int) throws(SystemError) -> IOResult {
        let r = try Sys.read(fd, buffer.writePointer, space)
        if case .done(let n) = r { buffer.writer += n }
        return r
    }

    /// Reads into raw memory (bytes that are thrown away).
    @inline(__always)
    func read(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        try Sys.read(fd, p, n)
    }

    /// Writes two regions with one call (a head and body bytes); either may be empty.
    @inline(__always)
    func write(_ p1: UnsafeRawPointer?, _ n1: Int, _ p2: UnsafeRawPointer?, _ n2: Int) throws(SystemError) -> IOResult {
        try Sys.writev2(fd, p1, n1, p2, n2)
    }

    /// Writes up to `count` regions with one call.
    @inline(__always)
    func write(_ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemError) -> IOResult {
        try Sys.writev(fd, iov, count)
    }

    /// Moves up to `n` bytes from this socket into a pipe.
    @inline(__always)
    func splice(toPipe pipeWrite: Int32, _ n: Int) throws(SystemError) -> IOResult {
        try Sys.splice(fd, pipeWrite, n)
    }

    /// Moves up to `n` bytes from a pipe onto this socket.
    @inline(__always)
    func splice(fromPipe pipeRead: Int32, _ n: Int) throws(SystemError) -> IOResult {
        try Sys.splice(pipeRead, fd, n)
    }

    /// Forgets the descriptor (the loop closed it).
    @inline(__always)
    mutating func closed() { fd = -1 }
}
