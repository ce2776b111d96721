// The socket half of reaching an endpoint, for Worker.dial: a non-blocking socket, connect
// started, TCP_NODELAY, registered with the loop.
import Glibc
import Reactor

enum Dialer {
    /// Starts connecting `connection` to `address` on its loop; `connected` when it already is.
    /// Throws when the connect failed at once (no socket, refused synchronously, not
    /// registrable). Worker.dial (UpstreamDial.swift) adds the endpoint's TLS.
    static func open(_ connection: Pollable, to address: SocketAddress) throws(SystemError) -> (transport: Transport, connected: Bool) {
        let fd = try Sys.socket(family: address.family)
        let connected: Bool
        do {
            connected = try Sys.connect(fd, address)
            Sys.setNoDelay(fd)
            try connection.loop.register(connection, fd: fd)
        } catch {
            Sys.close(fd)
            throw error
        }
        return (Transport(fd: fd, writable: connected), connected)
    }

    /// After a connect completes (writable, error or hang-up): nil when it succeeded, else errno.
    static func connectError(_ transport: Transport) -> Int32? {
        let e = Sys.socketError(transport.fd)
        return e == 0 ? nil : e
    }
}
