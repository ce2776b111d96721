// The control socket: a Unix stream socket created with its mode, served by Dispatch sources on
// one serial I/O queue, far from the event loops; commands run on the state queue one at a time.
// Idle clients are closed after `idleTimeout`, and when every slot is taken the oldest idle one
// makes room, so clients that connect and wait can never lock the operators out.
import Config
import Dispatch
import Glibc
import Reactor
import Runtime
import Synchronization

public struct ControlSocketError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

public final class ControlServer: @unchecked Sendable {
    public static let maxClients = 64

    public let path: String
    /// Seconds without a command, outside a transaction, after which a client is closed (at
    /// most a day).
    public let idleTimeout: Double
    private let fd: Int32
    /// The socket file we created (device, inode): only that file is removed at stop.
    private let identity: (dev: UInt64, ino: UInt64)
    private let io = DispatchQueue(label: "switchyard.control.io")
    // Confined to `io`:
    private var acceptSource: (any DispatchSourceRead)?
    private var idleTimer: (any DispatchSourceTimer)?
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    private var stopped = false
    private let listenerClosed = DispatchSemaphore(value: 0)

    /// Not errors: a directory its group can write.
    public let warnings: [String]

    /// The socket for `settings` (path, mode, forceMode, idle time-out).
    /// `owner`: the account the proxy becomes after start ("user"), given the socket file.
    public convenience init(_ settings: Config.ControlSocket, owner: ServiceAccount? = nil) throws(ControlSocketError) {
        try self.init(path: settings.socket, mode: settings.mode, forceMode: settings.forceMode,
                      idleTimeout: Double(settings.idleTimeoutMs) / 1000, owner: owner)
    }

    /// Creates the socket file with `mode`. A stale file left by a dead process is replaced; a
    /// socket another live process answers on, or a file that is not a socket, is an error. So
    /// are a mode that lets every user connect (unless `forceMode`) and a directory where
    /// another user could replace the socket.
    public init(path: String, mode: Int, forceMode: Bool = false, idleTimeout: Double = 60,
                owner: ServiceAccount? = nil) throws(ControlSocketError) {
        self.path = path
        self.idleTimeout = min(max(idleTimeout, 0.001), 86_400)
        guard !path.isEmpty, path.utf8.count < UnixPath.capacity else {
            throw ControlSocketError("control socket path \"\(path)\" is longer than \(UnixPath.capacity - 1) bytes")
        }
        if mode & 0o002 != 0 && !forceMode {
            throw ControlSocketError("control socket mode \(FileTrust.octal(mode)) lets every local user change the proxy; "
                + "use 0600 or 0660, or set forceMode to mean it")
        }
        let directory = FileTrust.directory(of: path)
        if let problem = FileTrust.directoryProblem(directory, holding: "control socket", stickyIsEnough: true,
                                                    serviceUID: owner?.uid) {
            throw ControlSocketError("\(problem): another user could replace the socket; choose another control.socket")
        }
        warnings = FileTrust.groupWritable(directory, holding: "control socket").map { [$0] } ?? []
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw ControlSocketError("\(path) exists and is not a socket; remove it or choose another control.socket")
            }
            if Self.answers(path) {
                throw ControlSocketError("another Switchyard is serving the control socket \(path); stop it or choose another control.socket")
            }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("control socket: socket: \(Self.reason(errno))") }
        // Bind under a temporary name in the same directory, then rename over the final path
        // (which replaces only what was checked above: a stale socket, never followed).
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var staging = "\(directory == "/" ? "" : directory)/.\(base).\(StateFile.randomSuffix().prefix(16))"
        if staging.utf8.count >= UnixPath.capacity { staging = path }
        unlink(staging)
        if staging == path { unlink(path) }
        // bind creates the file with 0777 & ~umask: masking everything `mode` does not grant
        // creates it with exactly `mode`, with no window before a chmod (start-up, before other
        // threads create files).
        let previousMask = umask(mode_t(0o777 & ~mode))
        let bound = UnixPath.withAddress(staging) { bind(fd, $0, $1) }
        umask(previousMask)
        if bound != 0 {
            let e = errno
            close(fd)
            throw ControlSocketError("cannot create the control socket \(path): \(Self.reason(e))")
        }
        // The user the proxy becomes owns its socket (before the rename: never reachable
        // with another owner).
        let owned = owner.map { lchown(staging, $0.uid, $0.gid) == 0 } ?? true
        if !owned || listen(fd, 64) != 0 {
            let e = errno
            unlink(staging)
            close(fd)
            throw ControlSocketError("cannot set up the control socket \(path): \(Self.reason(e))")
        }
        if staging != path && rename(staging, path) != 0 {
            let e = errno
            unlink(staging)
            close(fd)
            throw ControlSocketError("cannot create the control socket \(path): \(Self.reason(e))")
        }
        lstat(path, &st)
        self.fd = fd
        identity = (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Whether a process accepts connections on the socket at `path`.
    static func answers(_ path: String) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return UnixPath.withAddress(path) { connect(probe, $0, $1) } == 0
    }

    /// Starts accepting; each connection's lines go to `engine`.
    public func start(_ engine: ControlEngine) {
        io.sync {
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: io)
            source.setEventHandler { [weak self] in self?.acceptAll(engine) }
            // The descriptor closes only once Dispatch has let go of it.
            let fd = self.fd
            let closed = self.listenerClosed
            source.setCancelHandler {
                close(fd)
                closed.signal()
            }
            source.resume()
            acceptSource = source
            // Checked at a quarter of the time-out (at most every second): a client is closed
            // between 1 and 1.25 time-outs after its last command.
            let timer = DispatchSource.makeTimerSource(queue: io)
            let interval = min(1, max(idleTimeout / 4, 0.005))
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(Int(interval * 250)))
            timer.setEventHandler { [weak self] in self?.closeIdleClients() }
            timer.resume()
            idleTimer = timer
        }
    }

    private func closeIdleClients() {
        let now = DispatchTime.now().uptimeNanoseconds
        let limit = UInt64(idleTimeout * 1e9)
        let expired = connections.values.filter { $0.isIdle && !$0.inTransaction && now >= $0.lastCommand + limit }
        for c in expired {
            c.close(saying: "closing: no command for \(ControlValue.format(idleTimeout)) s (control.idleTimeoutMs)")
        }
    }

    /// Closes the idle client whose last command is oldest (one without a transaction first)
    /// to make room for a new one; false when every client has a command running.
    private func makeRoom() -> Bool {
        let idle = connections.values.filter(\.isIdle)
        guard let oldest = idle.min(by: { a, b in
            a.inTransaction != b.inTransaction ? !a.inTransaction : a.lastCommand < b.lastCommand
        }) else { return false }
        oldest.close(saying: "closing: the oldest idle of \(Self.maxClients) control clients makes room for a new one"
            + (oldest.inTransaction ? "; its transaction is aborted" : ""))
        return true
    }

    private func acceptAll(_ engine: ControlEngine) {
        while !stopped {
            let client: Int32?
            do { client = try Sys.accept(fd) } catch { return }
            guard let client else { return }
            if connections.count >= Self.maxClients && !makeRoom() {
                let line = ControlProtocol.line(ControlProtocol.failure("too many control clients (\(Self.maxClients)); try again later"))
                _ = line.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(client)
                continue
            }
            let connection = ControlConnection(fd: client, engine: engine, io: io) { [weak self] c in
                self?.connections[ObjectIdentifier(c)] = nil
            }
            connections[ObjectIdentifier(connection)] = connection
            connection.start()
        }
    }

    /// Stops accepting, closes every connection (aborting open transactions) and removes the
    /// socket file if it is still the one this server created.
    public func stop() {
        let started = io.sync { () -> Bool? in
            guard !stopped else { return nil }
            stopped = true
            let started = acceptSource != nil
            acceptSource?.cancel()
            acceptSource = nil
            idleTimer?.cancel()
            idleTimer = nil
            for c in connections.values { c.close() }
            connections.removeAll()
            return started
        }
        guard let started else { return }
        if started { listenerClosed.wait() } else { close(fd) }
        var st = stat()
        if lstat(path, &st) == 0 && UInt64(st.st_dev) == identity.dev && UInt64(st.st_ino) == identity.ino {
            unlink(path)
        }
    }

    public var clientCount: Int { io.sync { connections.count } }

    static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// `sockaddr_un` for a path.
public enum UnixPath {
    public static let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    public static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(capacity - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1)
        return withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
