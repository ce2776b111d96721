// An answer read as it arrives, for a server that keeps streaming (etcd's watch sends one JSON
// message per change on an answer that never ends): the head is read and checked first, then
// the body is handed over in pieces until the server closes, the idle timeout passes, or
// `cancel` (from any thread) ends it.
import Glibc
import Reactor
import Routing
public import TLS

public final class FetchStreaming: @unchecked Sendable {
    /// The status and fields; `body` holds what arrived with the head.
    public let response: FetchResponse
    private let fd: Int32
    private let stream: any FetchStream
    private let idleTimeout: Double
    private var closed = false

    /// Sends `request`, reads the answer's head within `timeout`, then waits at most
    /// `idleTimeout` for each later piece.
    public init(_ request: FetchRequest, to url: HTTPURL, tls: TLSClientSettings = TLSClientSettings(), timeout: Double = 2,
                idleTimeout: Double, maxHeadBytes: Int = 64 << 10) throws(FetchError) {
        fd = try Fetch.connect(url, timeout: timeout)
        do throws(FetchError) {
            stream = try Fetch.startStream(fd: fd, url: url, tls: tls)
            try stream.send(try Fetch.serialize(request, host: url.authority))
            var bytes: [UInt8] = []
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 1)
            defer { chunk.deallocate() }
            let separator: [UInt8] = [13, 10, 13, 10]
            let deadline = Condition.now() + timeout
            while bytes.firstRange(of: separator) == nil {
                let n = try stream.receive(chunk, timeout: timeout)
                guard n > 0 else { throw FetchError("closed before the end of the answer's head") }
                bytes += chunk[0..<n]
                if bytes.count > maxHeadBytes { throw FetchError("answer head over \(maxHeadBytes) bytes") }
                if Condition.now() > deadline { throw FetchError("no answer head within \(timeout)s") }
            }
            var head = try FetchAnswer.parse(bytes, headOnly: true)
            if head.header("Content-Length") != nil { throw FetchError("a streamed answer with a Content-Length") }
            head.body = Array(bytes[(bytes.firstRange(of: separator)!.upperBound)...])
            response = head
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.idleTimeout = idleTimeout
        var tv = timeval(tv_sec: Int(max(idleTimeout, 0.001)), tv_usec: Int((idleTimeout - Double(Int(idleTimeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { if !closed { Glibc.close(fd) } }

    /// The next piece of the body, appended to `into`; false once the server has closed.
    /// Throws when nothing came for `idleTimeout` or the stream was cancelled.
    public func read(into bytes: inout [UInt8]) throws(FetchError) -> Bool {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 1)
        defer { chunk.deallocate() }
        let n = try stream.receive(chunk, timeout: idleTimeout)
        if n == 0 { return false }
        bytes += chunk[0..<n]
        return true
    }

    /// Ends the stream: a read blocked in another thread returns.
    public func cancel() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Closes the socket; call once no thread reads any more.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}
