// Blocking loopback sockets for tests: connect, listen on a kernel-chosen port, send everything,
// receive with a timeout (SO_RCVTIMEO), and what ended a read (timeout, orderly close, reset).
// Unix sockets (control socket, notify datagrams) are at the end.
import Foundation
import Glibc

public enum SocketError: Error, Equatable, CustomStringConvertible {
    case timedOut
    case closed
    case reset
    case system(String, Int32)

    public var description: String {
        switch self {
        case .timedOut: return "timed out waiting for the peer"
        case .closed: return "the peer closed the connection"
        case .reset: return "the peer reset the connection"
        case .system(let call, let e): return "\(call): \(String(cString: strerror(e)))"
        }
    }
}

public enum Sockets {
    public static func loopback(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    public static func newSocket() throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.system("socket", errno) }
        return fd
    }

    public static func setTimeouts(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A connected socket to 127.0.0.1:port.
    public static func connect(port: UInt16) throws -> Int32 {
        let fd = try newSocket()
        var address = loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError.system("connect", e)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// A socket bound to 127.0.0.1 on a kernel-chosen port (or `port`); listening when `listen`
    /// is true. A bound socket that does not listen refuses connections, and holds its port
    /// meanwhile. `reuseAddress` (SO_REUSEADDR) lets a server listen again on the port a
    /// stopped one had, while its old connections linger.
    public static func bound(listen: Bool, port: UInt16 = 0, reuseAddress: Bool = false,
                             backlog: Int32 = 128) throws -> (fd: Int32, port: UInt16) {
        let fd = try newSocket()
        if reuseAddress {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SocketError.system("bind", e)
        }
        if listen && Glibc.listen(fd, backlog) != 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError.system("listen", e)
        }
        return (fd, localPort(fd))
    }

    public static func localPort(_ fd: Int32) -> UInt16 { port(fd) { getsockname($0, $1, $2) } }

    public static func remotePort(_ fd: Int32) -> UInt16 { port(fd) { getpeername($0, $1, $2) } }

    /// The port of the address `name` (getsockname or getpeername) gives for `fd`.
    private static func port(_ fd: Int32, _ name: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { name(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    public static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN: throw SocketError.timedOut
                case ECONNRESET, EPIPE: throw SocketError.reset
                case let e: throw SocketError.system("send", e)
                }
            }
            offset += n
        }
    }

    /// One read: the bytes read (never empty); throws `.closed` on an orderly close.
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return n }
            if n == 0 { throw SocketError.closed }
            switch errno {
            case EINTR: continue
            case EAGAIN: throw SocketError.timedOut
            case ECONNRESET: throw SocketError.reset
            case let e: throw SocketError.system("recv", e)
            }
        }
    }

    /// Sends every byte of `bytes`; false when the peer is gone or the send timed out.
    @discardableResult
    public static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        (try? bytes.withUnsafeBytes { try sendAll(fd, $0) }) != nil
    }

    /// Where the head of an HTTP message ends in `bytes`: the offset of its "\r\n\r\n", or nil
    /// while it is incomplete.
    public static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}

public enum UnixSockets {
    /// Calls `body` with a sockaddr_un for `path` and its length. A path that starts with "@"
    /// names the abstract namespace (no file; the name's bytes follow a NUL).
    public static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 } else { bytes.append(0) }
        precondition(bytes.count <= MemoryLayout.size(ofValue: address.sun_path), "unix socket path too long: \(path)")
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// A stream socket connected to `path`, with `timeout` on its reads and writes.
    public static func connect(path: String, timeout: Double) throws -> Int32 {
        try open(SOCK_STREAM, path, timeout: timeout, "connect") { Glibc.connect($0, $1, $2) }
    }

    /// Leaves a socket file at `path` that nobody serves: bound, then closed without unlinking,
    /// as a process that died leaves it.
    public static func makeStale(path: String) throws {
        Glibc.close(try open(SOCK_STREAM, path, timeout: nil, "bind") { Glibc.bind($0, $1, $2) })
    }

    /// A datagram socket bound to `path` (or "@name"), whose reads time out after `timeout`.
    public static func datagramReceiver(path: String, timeout: Double) throws -> Int32 {
        try open(SOCK_DGRAM, path, timeout: timeout, "bind") { Glibc.bind($0, $1, $2) }
    }

    /// A new socket of `type` that `attach` (bind or connect) gave `path`.
    private static func open(_ type: __socket_type, _ path: String, timeout: Double?, _ call: String,
                             _ attach: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.system("socket", errno) }
        guard withAddress(path, { attach(fd, $0, $1) }) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SocketError.system("\(call) \(path)", e)
        }
        if let timeout { Sockets.setTimeouts(fd, seconds: timeout) }
        return fd
    }

    /// The next datagram on `fd` as text; nil when none came before the socket's timeout.
    public static func receiveDatagram(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }
}
