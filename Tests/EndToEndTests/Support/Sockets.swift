// Blocking loopback sockets for tests: connect, listen, send everything, receive with a timeout
// (SO_RCVTIMEO), and what ended a read (timeout, orderly close, reset).
import Foundation
import Glibc

enum SocketError: Error, Equatable, CustomStringConvertible {
    case timedOut
    case closed
    case reset
    case system(String, Int32)

    var description: String {
        switch self {
        case .timedOut: return "timed out waiting for the peer"
        case .closed: return "the peer closed the connection"
        case .reset: return "the peer reset the connection"
        case .system(let call, let e): return "\(call): \(String(cString: strerror(e)))"
        }
    }
}

enum Sockets {
    static func loopback(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    static func newSocket() throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.system("socket", errno) }
        return fd
    }

    static func setTimeouts(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A connected socket to 127.0.0.1:port.
    static func connect(port: UInt16) throws -> Int32 {
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

    /// A socket bound to 127.0.0.1 on a kernel-chosen port; listening when `listen` is true.
    /// A bound socket that does not listen refuses connections, and holds its port meanwhile.
    static func bound(listen: Bool) throws -> (fd: Int32, port: UInt16) {
        let fd = try newSocket()
        var address = loopback(port: 0)
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
        if listen && Glibc.listen(fd, 128) != 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError.system("listen", e)
        }
        return (fd, localPort(fd))
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    static func remotePort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
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
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
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
}
