// Every syscall the data path makes, one thin wrapper each: EINTR retried, EAGAIN turned into a
// value, anything else a typed error carrying errno and the call's name.
import CLinux
import Glibc

public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: StaticString
    public let errno: Int32

    public init(_ call: StaticString, _ errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// The outcome of a non-blocking read or write.
public enum IOResult: Equatable {
    case done(Int)      // bytes transferred (0 on read = end of stream)
    case wouldBlock
}

public enum Sys {
    /// The retry loop every non-blocking transfer shares. `call` returns the syscall's result
    /// and the errno it read right after the call (before anything else can change it).
    @inline(__always)
    private static func transfer(_ name: StaticString, _ call: () -> (Int, Int32)) throws(SystemError) -> IOResult {
        while true {
            let (r, e) = call()
            if r >= 0 { return .done(r) }
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(name, e)
        }
    }

    @inline(__always)
    private static func withErrno(_ r: Int) -> (Int, Int32) { (r, r < 0 ? sy_errno() : 0) }

    @inline(never)
    public static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        try transfer("read") { withErrno(Glibc.read(fd, p, n)) }
    }

    @inline(never)
    public static func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        try transfer("send") { withErrno(Glibc.send(fd, p, n, Int32(MSG_NOSIGNAL))) }
    }

    /// Writes two regions with one syscall (a serialized head and body bytes).
    @inline(never)
    public static func writev2(_ fd: Int32, _ p1: UnsafeRawPointer?, _ n1: Int,
                               _ p2: UnsafeRawPointer?, _ n2: Int) throws(SystemError) -> IOResult {
        // One region is the common case: a plain send is cheaper than sendmsg.
        if n2 == 0 { return try write(fd, p1!, n1) }
        if n1 == 0 { return try write(fd, p2!, n2) }
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: p1), iov_len: n1),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: p2), iov_len: n2))
        return try withUnsafeMutablePointer(to: &iov) { ptr throws(SystemError) in
            try writev(fd, UnsafeMutableRawPointer(ptr).assumingMemoryBound(to: iovec.self), 2)
        }
    }

    /// Writes up to `count` regions with one syscall.
    @inline(never)
    public static func writev(_ fd: Int32, _ iov: UnsafeMutablePointer<iovec>, _ count: Int) throws(SystemError) -> IOResult {
        try transfer("sendmsg") {
            var msg = msghdr()
            msg.msg_iov = iov
            msg.msg_iovlen = count
            return withErrno(Glibc.sendmsg(fd, &msg, Int32(MSG_NOSIGNAL)))
        }
    }

    /// Moves up to `n` bytes between descriptors in the kernel (one side must be a pipe).
    @inline(never)
    public static func splice(_ from: Int32, _ to: Int32, _ n: Int) throws(SystemError) -> IOResult {
        try transfer("splice") { withErrno(sy_splice(from, to, n)) }
    }

    /// A non-blocking pipe: (read end, write end).
    public static func pipe() throws(SystemError) -> (Int32, Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutablePointer(to: &fds) { $0.withMemoryRebound(to: Int32.self, capacity: 2) { sy_pipe2($0) } }
        if r != 0 { throw SystemError("pipe2", sy_errno()) }
        return fds
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    @inline(never)
    public static func socket(family: Int32) throws(SystemError) -> Int32 {
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemError("socket", sy_errno()) }
        return fd
    }

    public static func setReuse(_ fd: Int32, port: Bool) {
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if port {
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// SO_LINGER with a zero timeout: closing the socket sends a reset.
    public static func setLingerZero(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    public static func setNoDelay(_ fd: Int32) {
        _ = sy_set_nodelay(fd)
    }

    @inline(never)
    public static func bind(_ fd: Int32, _ address: SocketAddress) throws(SystemError) {
        let r = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        if r != 0 { throw SystemError("bind", sy_errno()) }
    }

    @inline(never)
    public static func listen(_ fd: Int32, backlog: Int32) throws(SystemError) {
        if Glibc.listen(fd, backlog) != 0 { throw SystemError("listen", sy_errno()) }
    }

    /// A blocking listening socket, for the small servers that run on threads of their own
    /// (the echo test upstream).
    public static func blockingListener(_ address: SocketAddress, backlog: Int32) throws(SystemError) -> Int32 {
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemError("socket", sy_errno()) }
        setReuse(fd, port: false)
        do {
            try bind(fd, address)
            try listen(fd, backlog: backlog)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Waits for a connection on a blocking listener; nil once the listener is closed or fails.
    public static func acceptBlocking(_ fd: Int32) -> Int32? {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 { return c }
            let e = sy_errno()
            if e == EINTR || e == ECONNABORTED { continue }
            return nil
        }
    }

    /// Returns nil when no connection is waiting.
    @inline(never)
    public static func accept(_ fd: Int32) throws(SystemError) -> Int32? {
        while true {
            let c = sy_accept4(fd, nil, nil)
            if c >= 0 { return c }
            let e = sy_errno()
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", e)
        }
    }

    /// Starts a non-blocking connect; returns true when already connected.
    @inline(never)
    public static func connect(_ fd: Int32, _ address: SocketAddress) throws(SystemError) -> Bool {
        while true {
            let r = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return true }
            let e = sy_errno()
            if e == EINTR { continue }
            if e == EINPROGRESS { return false }
            throw SystemError("connect", e)
        }
    }

    /// The pending error of a socket (after a non-blocking connect completes).
    public static func socketError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return sy_errno() }
        return err
    }

    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return r == 0 ? SocketAddress(storage: storage, length: len) : nil
    }

    public static func peerAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        return r == 0 ? SocketAddress(storage: storage, length: len) : nil
    }

    public static func monotonicMs() -> UInt64 { sy_monotonic_ms() }
    public static func monotonicNs() -> UInt64 { sy_monotonic_ns() }
}
