// The bytes of one fetch on a blocking socket whose timeouts are set: sent whole, received
// until the server's close (0). In TLS, a want-read or want-write is the socket's timeout.
import Glibc
import Synchronization
import TLS

protocol FetchStream {
    func send(_ bytes: [UInt8]) throws(FetchError)
    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(FetchError) -> Int
}

struct PlainFetchStream: FetchStream {
    let fd: Int32

    func send(_ bytes: [UInt8]) throws(FetchError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FetchError("send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(FetchError) -> Int {
        while true {
            let n = recv(fd, into.baseAddress!, into.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw FetchError("no answer within \(timeout)s (\(String(cString: strerror(errno))))")
        }
    }
}

struct TLSFetchStream: FetchStream {
    let connection: TLSConnection
    let client: TLSClient
    let peer: String

    init(fd: Int32, host: String, port: UInt16, tls: TLSClientSettings) throws(FetchError) {
        peer = "\(host):\(port)"
        client = try Self.context(tls, peer: peer)
        guard let c = client.connect(fd: fd, host: host, resume: nil) else {
            throw FetchError("TLS to \(peer): cannot start a session")
        }
        connection = c
        switch c.handshake() {
        case .done: break
        case .wantRead, .wantWrite: throw FetchError("TLS handshake with \(peer) timed out")
        case .failed(let reason): throw FetchError("TLS handshake with \(peer) failed: \(reason)")
        }
    }

    /// One client context per TLS policy and version of its files, made on first use and shared
    /// by later fetches (a gate reading asks six questions; loading a CA store for each was work
    /// done six times). A file replaced under the same path (a rotation) is loaded again.
    private static let contexts = Mutex<[String: TLSClient]>([:])

    private static func context(_ tls: TLSClientSettings, peer: String) throws(FetchError) -> TLSClient {
        var key = "\(tls.verify) \(tls.serverName ?? "")"
        for file in [tls.caFile, tls.cert, tls.key] {
            key += "\u{0}" + (file ?? "")
            var st = stat()
            if let file, stat(file, &st) == 0 { key += " \(st.st_ino) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_size)" }
        }
        if let known = contexts.withLock({ $0[key] }) { return known }
        let made: TLSClient
        do {
            made = try TLSClient(tls)
        } catch {
            throw FetchError("TLS to \(peer): \(error)")
        }
        contexts.withLock {
            if $0.count >= 16 { $0.removeAll() }   // rotations leave old versions behind
            $0[key] = made
        }
        return made
    }

    func send(_ bytes: [UInt8]) throws(FetchError) {
        var sent = 0
        while sent < bytes.count {
            let r = bytes.withUnsafeBytes { connection.write($0.baseAddress! + sent, $0.count - sent) }
            guard case .done(let n) = r, n > 0 else { throw FetchError("TLS send to \(peer): \(r)") }
            sent += n
        }
    }

    func receive(_ into: UnsafeMutableRawBufferPointer, timeout: Double) throws(FetchError) -> Int {
        switch connection.read(into.baseAddress!, into.count) {
        case .done(let n): return n
        case .closed: return 0
        case .wantRead, .wantWrite: throw FetchError("no answer from \(peer) within \(timeout)s")
        case .failed(let reason): throw FetchError("TLS read from \(peer): \(reason)")
        }
    }
}
