// The one way every HTTP client of the proxy reaches an upstream endpoint (primary requests,
// shadow copies, health checks, warm-up): a non-blocking connect, then TLS with the context of
// the endpoint's own policy, the name it is reached by, and the newest session it issued. What
// a client then does with the response is its own; how it gets there is decided here only.
import Glibc
import Reactor
import Routing
import TLS

/// Why a connection to an upstream could not be opened.
struct DialFailure: Error {
    let reason: String
}

/// By endpoint id: its TLS (nil: plain), the name it is reached by, and a session to resume
/// the next connection with. An endpoint id stands for its whole TLS policy
/// (`EndpointIdentity`), so a session never crosses from one policy to another.
struct EndpointTLSTable {
    private var contexts: [UpstreamTLS?] = []
    private var names: [String] = []
    private var sessions: [TLSSession?] = []

    mutating func rebuild(_ snapshot: Snapshot, security: UpstreamSecurity, count: Int) {
        var next = [UpstreamTLS?](repeating: nil, count: count)
        var nextNames = [String](repeating: "", count: count)
        for u in snapshot.upstreams {
            let pools: [(String?, Pool)]
            switch u.kind {
            case .pool(let p): pools = [(nil, p)]
            case .blueGreen(let bg): pools = [("blue", bg.blue), ("green", bg.green)]
            }
            for (color, pool) in pools {
                guard let tls = security.pools[UpstreamSecurity.key(upstream: u.name, color: color)] else { continue }
                for e in pool.endpoints where e.id < count {
                    next[e.id] = tls
                    // SNI and the verified name: serverName, else the Host sent (without its
                    // port), else the endpoint's name as written, else its address.
                    nextNames[e.id] = tls.serverName ?? pool.hostHeaderName ?? e.hostName ?? e.host
                }
            }
        }
        if sessions.count < count { sessions.append(contentsOf: repeatElement(nil, count: count - sessions.count)) }
        for id in 0..<min(contexts.count, count) where contexts[id] !== next[id] || names[id] != nextNames[id] {
            sessions[id] = nil   // a session belongs to the context and name that made it
        }
        contexts = next
        names = nextNames
    }

    /// The TLS to reach endpoint `id` with, and the name it is reached by; nil for plain.
    func lookup(_ id: Int) -> (tls: UpstreamTLS, name: String)? {
        guard id >= 0, id < contexts.count, let t = contexts[id] else { return nil }
        return (t, names[id])
    }

    func session(_ id: Int) -> TLSSession? { id >= 0 && id < sessions.count ? sessions[id] : nil }

    mutating func keep(_ s: TLSSession, for id: Int) {
        if id >= 0, id < sessions.count, contexts[id] != nil { sessions[id] = s }
    }
}

/// Where a connection goes: an endpoint of the snapshot (its TLS looked up by id), or an
/// address with TLS given by the caller (a warm-up of a color not serving yet).
struct UpstreamTarget {
    let address: SocketAddress
    /// The endpoint id, for its TLS context and sessions; -1 when `tls` says it all.
    let endpointID: Int
    let tls: (tls: UpstreamTLS, name: String)?

    init(endpoint id: Int, address: SocketAddress) {
        self.address = address
        endpointID = id
        tls = nil
    }

    init(address: SocketAddress, tls: UpstreamTLS?, name: String) {
        self.address = address
        endpointID = -1
        self.tls = tls.map { ($0, name) }
    }
}

extension Worker {
    /// The buffer capacity to read a response head into: one pooled block, and past it (a head
    /// that does not fit) the response-head limit. Asking for the limit at once (64 KiB, larger
    /// than a block) took a buffer from malloc for every response.
    @inline(__always)
    func headRoom(for buffer: ByteBuffer) -> Int {
        let limit = settings.responseLimits.maxHeadBytes + 1
        return buffer.readableCount < buffers.blockSize ? min(limit, buffers.blockSize) : limit
    }

    /// Starts connecting `connection` to `target`, with TLS when its policy asks for it
    /// (resuming `resume`, else the endpoint's newest session). `connected`: the connect already
    /// completed. Throws the reason when it failed at once.
    func dial(_ connection: Pollable, _ target: UpstreamTarget, resume: TLSSession? = nil) throws(DialFailure) -> (transport: Transport, connected: Bool) {
        var opened: (transport: Transport, connected: Bool)
        do { opened = try Dialer.open(connection, to: target.address) } catch {
            throw DialFailure(reason: "connect: \(String(cString: strerror(error.errno)))")
        }
        guard let (tls, name) = target.tls ?? endpointTLS.lookup(target.endpointID) else { return opened }
        guard let session = tls.client.connect(fd: opened.transport.fd, host: name,
                                               resume: resume ?? endpointTLS.session(target.endpointID)) else {
            opened.transport.closed()
            connection.loop.close(connection)
            throw DialFailure(reason: "cannot start TLS with \(name)")
        }
        opened.transport.tls = session
        return opened
    }

    /// Keeps the newest session an endpoint issued on `transport`, and counts the handshake once.
    func noteTLS(_ transport: Transport, endpoint id: Int, counted: inout Bool) {
        guard let c = transport.tls, c.established else { return }
        if !counted {
            counted = true
            stats.add(.upstreamTLSHandshakes)
            if c.resumed { stats.add(.upstreamTLSResumed) }
        }
        if let s = c.takeSession() { endpointTLS.keep(s, for: id) }
    }

    /// A TLS session with an upstream failed: one line (rate-limited) naming the upstream,
    /// the endpoint and the reason.
    func upstreamTLSFailed(_ transport: Transport, endpoint id: Int) {
        guard let reason = transport.tlsFailure, let (t, name) = endpointTLS.lookup(id) else { return }
        stats.add(.upstreamTLSFailures)
        let address = address(endpointID: id).map { "\($0)" } ?? name
        events.write(kind: "upstream-tls \(t.upstream)", "upstream \(t.upstream): TLS with \(name) (\(address)) failed: \(reason)")
    }

    /// Why a connection failed, as a log line or a report says it: the TLS alert or
    /// verification error when TLS failed, else the system's word for the errno.
    static func failureReason(_ transport: Transport, _ error: SystemError, doing what: String) -> String {
        if let tls = transport.tlsFailure { return "TLS: \(tls)" }
        return "\(what): \(String(cString: strerror(error.errno)))"
    }
}
