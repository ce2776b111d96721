// systemd's readiness protocol (Type=notify), without libsystemd: one datagram to the Unix
// socket named by $NOTIFY_SOCKET per state change. READY=1 once listening; RELOADING=1 with
// MONOTONIC_USEC, then READY=1, around each reload; STOPPING=1 when the drain begins. Without
// $NOTIFY_SOCKET every call does nothing.
import CommandSocket
import Foundation
import Glibc

public enum ServiceNotify {
    /// The socket path from the environment at start ("@name": the abstract namespace).
    public static let socketPath: String? = {
        guard let value = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !value.isEmpty else { return nil }
        return value
    }()

    public static func ready() { send("READY=1\nSTATUS=serving\n") }

    /// Reloading from now until the next `ready()`; systemd wants the monotonic clock with it.
    public static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)\nSTATUS=reloading\n")
    }

    public static func stopping() { send("STOPPING=1\nSTATUS=draining\n") }

    /// One datagram; failures are ignored (the manager may be gone, and serving matters more).
    @discardableResult
    public static func send(_ message: String, to path: String? = socketPath) -> Bool {
        guard let path else { return false }
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        guard pathBytes.count < UnixPath.capacity, abstract || pathBytes.first == UInt8(ascii: "/") else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            if !abstract { raw[pathBytes.count] = 0 }
        }
        // An abstract name is exactly its bytes; a path includes its terminating zero.
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + (abstract ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), a, length) }
            }
        }
        return sent == bytes.count
    }
}
