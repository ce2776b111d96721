// Opening a connection to an endpoint, for every HTTP client of the proxy (upstream, shadow,
// warm-up): a non-blocking socket, connect started, TCP_NODELAY, registered with the loop.
import Glibc
import Reactor

enum Dialer {
    /// Starts connecting `connection` to `address` on its loop. Nil when the connect failed at
    /// once (no socket, refused synchronously, not registrable); `connected` when it already is.
    static func dial(_ connection: Pollable, to address: SocketAddress) -> (transport: Transport, connected: Bool)? {
        try? open(connection, to: address)
    }

    /// As `dial`, with the reason when it failed at once.
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
