// The byte stream under a connection, and the only code in Proxy that reads or writes a
// connection's socket. It keeps what it last learned of the socket's readiness: the loop's
// events set it, a call that would block clears it. Plain TCP, or TLS over it: then reads and
// writes go through the TLS session (the handshake first, driven by whichever call comes), and
// there is no splice (the bytes must pass through user space to be encrypted).
import Glibc
import Reactor
import TLS

/// Below this many plaintext bytes a TLS record cannot have filled OpenSSL's read-ahead buffer.
enum TLSDrain { static let smallRecord = 8192 }

struct Transport {
    /// The descriptor registered with the loop (-1 before connecting and after closing).
    private(set) var fd: Int32 = -1
    var canRead = false
    var canWrite = false
    /// The peer's FIN (or a hang-up) was reported: reading continues until it is seen.
    var peerFinished = false
    /// The TLS session over the socket; nil for plain TCP.
    var tls: TLSConnection?
    /// A TLS read waits for writability (a key update to send), or a write for readability.
    private var readWantsWrite = false
    private var writeWantsRead = false
    /// The close resets the connection: no TLS closing alert goes before it.
    private var resets = false

    init() {}

    init(fd: Int32, writable: Bool) {
        self.fd = fd
        canWrite = writable
    }

    @inline(__always) var isOpen: Bool { fd >= 0 }

    /// Whether body bytes may be spliced out of this socket (plain TCP, or TLS the kernel
    /// decrypts: kTLS receive) and into it (plain, or kTLS send).
    @inline(__always) var canSpliceFrom: Bool { if let t = tls { return t.kernelReceives } else { return true } }
    @inline(__always) var canSpliceTo: Bool { if let t = tls { return t.kernelSends } else { return true } }

    /// A TLS session whose handshake has not completed.
    var handshaking: Bool { if let t = tls { return !t.established } else { return false } }

    /// Why the TLS session failed, when it did.
    var tlsFailure: String? { tls?.failure }

    /// Takes in an event's readiness bits (`PollEvents`).
    @inline(__always)
    mutating func take(events: UInt32) {
        if events & (PollEvents.input | PollEvents.peerClosed | PollEvents.hangUp | PollEvents.error) != 0 { canRead = true }
        if events & (PollEvents.peerClosed | PollEvents.hangUp) != 0 { peerFinished = true }
        if events & PollEvents.output != 0 { canWrite = true }
        if tls != nil { takeTLS(events: events) }
    }

    /// A TLS session's reads may wait on writability and its writes on readability; during the
    /// handshake any event may be the one it waits for, so both directions try again.
    private mutating func takeTLS(events: UInt32) {
        if handshaking {
            canRead = true
            canWrite = true
            return
        }
        if readWantsWrite && events & PollEvents.output != 0 { readWantsWrite = false; canRead = true }
        if writeWantsRead && events & (PollEvents.input | PollEvents.hangUp | PollEvents.error) != 0 { writeWantsRead = false; canWrite = true }
    }

    /// Reads into `buffer` after its written bytes, at most `space` bytes. A short read drained
    /// the socket (edge-triggered epoll reports new data), unless the peer's FIN came with it:
    /// that end of stream is read next.
    @inline(__always)
    mutating func read(into buffer: inout ByteBuffer, space: Int) throws(SystemError) -> IOResult {
        if let t = tls {
            let r = try tlsRead(t, buffer.writePointer, space)
            if case .done(let n) = r { buffer.writer += n }
            return r
        }
        let r = try Sys.read(fd, buffer.writePointer, space)
        switch r {
        case .wouldBlock:
            canRead = false
        case .done(let n):
            buffer.writer += n
            if n > 0 && n < space && !peerFinished { canRead = false }
        }
        return r
    }

    /// Reads into raw memory (bytes that are thrown away).
    @inline(__always)
    mutating func read(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        if let t = tls { return try tlsRead(t, p, n) }
        let r = try Sys.read(fd, p, n)
        if r == .wouldBlock { canRead = false }
        return r
    }

    /// Writes two regions with one call (a head and body bytes); either may be empty.
    @inline(__always)
    mutating func write(_ p1: UnsafeRawPointer?, _ n1: Int, _ p2: UnsafeRawPointer?, _ n2: Int) throws(SystemError) -> IOResult {
        if let t = tls {
            if !t.established, try !advanceHandshake(t) { return .wouldBlock }
            return try tlsWritten(t.write(p1, n1, p2, n2))
        }
        let r = try Sys.writev2(fd, p1, n1, p2, n2)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Writes up to `count` regions with one call.
    @inline(__always)
    mutating func write(_ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemError) -> IOResult {
        if tls != nil { return try tlsWrite(iov, count: count) }
        let r = try Sys.writev(fd, iov, count)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Moves up to `n` bytes from this socket into a pipe. A pipe fills by its 16 buffers, not
    /// by bytes: a body sent in small segments fills it with a few KiB, and then "would block"
    /// says nothing about the socket. Only with the pipe empty does it mean the socket is
    /// drained (taken for drained while megabytes waited, a body stalled until the idle timeout).
    @inline(__always)
    mutating func splice(toPipe pipeWrite: Int32, _ n: Int, pipeEmpty: Bool) throws(SystemError) -> IOResult {
        let r = try Sys.splice(fd, pipeWrite, n)
        if r == .wouldBlock && pipeEmpty { canRead = false }
        return r
    }

    /// Moves up to `n` bytes from a pipe onto this socket.
    @inline(__always)
    mutating func splice(fromPipe pipeRead: Int32, _ n: Int) throws(SystemError) -> IOResult {
        let r = try Sys.splice(pipeRead, fd, n)
        if r == .wouldBlock { canWrite = false }
        return r
    }

    /// Forgets the descriptor (the loop closed it), and the TLS session with it.
    @inline(__always)
    mutating func closed() {
        fd = -1
        canRead = false
        canWrite = false
        tls = nil
    }

    /// Writes `text` on the socket itself, past a TLS session that never started (an answer to
    /// plain HTTP on a TLS port); best effort, never blocks.
    func writeUnencrypted(_ text: StaticString) {
        guard fd >= 0 else { return }
        _ = try? Sys.write(fd, text.utf8Start, text.utf8CodeUnitCount)
    }

    /// Sends TLS's closing alert before the socket closes (best effort, never blocks).
    mutating func closeNotify() {
        if !resets { tls?.shutdown() }
    }

    /// Makes the coming close a reset (RST, unsent bytes dropped) instead of an orderly end (FIN,
    /// TLS's closing alert): for a peer that would take the orderly end for the end of a body.
    mutating func resetOnClose() {
        guard fd >= 0 else { return }
        resets = true
        Sys.setLingerZero(fd)
    }

    // MARK: TLS

    /// Runs the handshake as far as it goes; true once it is complete.
    private mutating func advanceHandshake(_ t: TLSConnection) throws(SystemError) -> Bool {
        switch t.handshake() {
        case .done:
            canRead = true
            return true
        case .wantRead, .wantWrite:
            // Neither direction moves until the handshake does; the next event (any: see
            // takeTLS) lets both try again.
            canRead = false
            canWrite = false
            return false
        case .failed:
            throw SystemError("SSL_do_handshake", EPROTO)
        }
    }

    @inline(__always)
    private mutating func tlsRead(_ t: TLSConnection, _ p: UnsafeMutableRawPointer, _ n: Int) throws(SystemError) -> IOResult {
        if !t.established, try !advanceHandshake(t) { return .wouldBlock }
        // With read-ahead, OpenSSL asks the socket for as much as its ~16 KiB buffer holds. When
        // nothing was buffered before this read and a small record came back whole with nothing
        // after it, that socket read was short: the socket is drained, and edge-triggered epoll
        // reports what comes next (this saves a read that would only say "would block" on every
        // request). Anything else reads on until "want read": the tail of a large record read
        // earlier says nothing about the socket (a large record can fill the buffer exactly,
        // and taking that for drained stalled a 20 MiB upload until the idle timeout).
        let bufferedBefore = t.hasPending
        switch t.read(p, n) {
        case .done(let k):
            if !bufferedBefore && k > 0 && k < n && k < TLSDrain.smallRecord && !peerFinished && !t.hasPending { canRead = false }
            return .done(k)
        case .closed: return .done(0)
        case .wantRead:
            canRead = false
            return .wouldBlock
        case .wantWrite:
            canRead = false
            readWantsWrite = true
            return .wouldBlock
        case .failed:
            throw SystemError("SSL_read", EPROTO)
        }
    }

    @inline(__always)
    private mutating func tlsWritten(_ r: TLSConnection.IO) throws(SystemError) -> IOResult {
        switch r {
        case .done(let k): return .done(k)
        case .wantWrite:
            canWrite = false
            return .wouldBlock
        case .wantRead:
            canWrite = false
            writeWantsRead = true
            return .wouldBlock
        case .closed, .failed:
            throw SystemError("SSL_write", EPIPE)
        }
    }

    private mutating func tlsWrite(_ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemError) -> IOResult {
        guard let t = tls else { return .done(0) }
        if !t.established, try !advanceHandshake(t) { return .wouldBlock }
        var total = 0
        for i in 0..<count {
            let v = iov[i]
            guard v.iov_len > 0, let base = v.iov_base else { continue }
            let r = try tlsWritten(t.write(UnsafeRawPointer(base), v.iov_len, nil, 0))
            guard case .done(let k) = r else { return total > 0 ? .done(total) : r }
            total += k
            if k < v.iov_len { break }
        }
        return .done(total)
    }
}
