// The client end of the control socket (`switchyard ctl`, tests, benchmarks): connect with a
// clear reason when nobody is there, send one line, read one reply line.
import Glibc
import Runtime

public struct ControlClientError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

public final class ControlClient {
    public let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// `timeout` bounds each read and write (seconds; nil waits as long as a command takes,
    /// e.g. a warm-up).
    public init(path: String, timeout: Double? = nil) throws(ControlClientError) {
        self.path = path
        guard path.utf8.count < UnixPath.capacity else {
            throw ControlClientError("control socket path \"\(path)\" is too long")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError("socket: \(String(cString: strerror(errno)))") }
        if UnixPath.withAddress(path, { connect(fd, $0, $1) }) != 0 {
            let e = errno
            close(fd)
            throw ControlClientError(Self.explain(e, path))
        }
        if let timeout {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        self.fd = fd
    }

    deinit { close(fd) }

    static func explain(_ e: Int32, _ path: String) -> String {
        switch e {
        case ENOENT:
            return "no control socket at \(path): is switchyard running, with a \"control\" section naming this socket? (--socket PATH)"
        case ECONNREFUSED:
            return "the control socket \(path) refuses connections: no switchyard is serving it (a stale socket file?)"
        case EACCES, EPERM:
            return "permission denied on the control socket \(path): its mode admits only its owner (run as that user)"
        case ENOTSOCK:
            return "\(path) is not a socket"
        default:
            return "cannot connect to the control socket \(path): \(String(cString: strerror(e)))"
        }
    }

    /// Sends one command line.
    public func send(_ line: String) throws(ControlClientError) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        try sendRaw(bytes)
    }

    /// Sends bytes as they are (tests use this for partial and oversized lines).
    public func sendRaw(_ bytes: [UInt8]) throws(ControlClientError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ControlClientError("sending to \(path): \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// The next reply line (without its newline); nil when the server closed the connection.
    public func readLine() throws(ControlClientError) -> String? {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[0..<newline], as: UTF8.self)
                buffer.removeSubrange(0...newline)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw ControlClientError("no reply from \(path) in time") }
                throw ControlClientError("reading from \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Sends `line` and parses its reply.
    public func command(_ line: String) throws(ControlClientError) -> ControlValue {
        try send(line)
        guard let reply = try readLine() else { throw ControlClientError("\(path) closed the connection without a reply") }
        guard let value = ControlValue(json: reply) else { throw ControlClientError("not a JSON reply: \(reply)") }
        return value
    }

    /// Half-closes: the server answers what was sent, then closes.
    public func finishSending() { shutdown(fd, Int32(SHUT_WR)) }
}
