// A loopback HTTP server standing in for one the control plane asks (a credentials endpoint,
// STS, instance metadata, a metrics source): on a kernel-chosen port, one request per
// connection, read whole (head and Content-Length body), recorded, answered with what the
// test's closure returns, then closed. Connections are served one at a time, in order.
import Foundation
import Glibc

public final class HTTPStandIn: @unchecked Sendable {
    public struct Request: Sendable {
        /// The bytes as received, head and body.
        public let raw: [UInt8]
        public let method: String
        /// The request target (path and query) as sent.
        public let target: String
        public let headers: [(name: String, value: String)]
        public let body: [UInt8]

        /// The first field named `name` (any case).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        public var text: String { String(decoding: raw, as: UTF8.self) }
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var received: [Request] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Serves until `stop` (or deinit); `answer` gives the bytes sent back to each request.
    public init(answer: @escaping @Sendable (Request) -> [UInt8]) throws {
        (fd, port) = try Sockets.bound(listen: true)
        let fd = fd
        Thread.detachNewThread { [self] in
            defer { finished.signal() }
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return   // shut down
                }
                Sockets.setTimeouts(c, seconds: 5)
                if let request = Self.read(c) {
                    lock.withLock { received.append(request) }
                    Sockets.send(c, answer(request))
                }
                close(c)
            }
        }
    }

    /// A server that answers every request with the same bytes.
    public convenience init(always bytes: [UInt8]) throws {
        try self.init(answer: { _ in bytes })
    }

    /// The requests received so far, in order.
    public var requests: [Request] { lock.withLock { received } }

    /// The requests once `count` have come (or after `timeout` seconds, fewer).
    public func requests(waitingFor count: Int, timeout: Double = 10) -> [Request] {
        waitUntil(timeout: timeout) { requests.count >= count }
        return requests
    }

    /// An HTTP/1.1 answer with `status`, `fields` ("Name: value") and `body`, its length given.
    public static func response(_ status: Int, _ body: String = "", fields: [String] = []) -> [UInt8] {
        let head = (["HTTP/1.1 \(status) Stand-in", "Content-Length: \(body.utf8.count)"] + fields).joined(separator: "\r\n")
        return Array((head + "\r\n\r\n" + body).utf8)
    }

    public func stop() {
        guard shutdown(fd, Int32(SHUT_RDWR)) == 0 else { return }   // already stopped
        finished.wait()
        close(fd)
    }

    deinit { stop() }

    /// One request off `c`: the head, then as many body bytes as its Content-Length says.
    private static func read(_ c: Int32) -> Request? {
        var bytes: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
        defer { chunk.deallocate() }
        var parsed: (method: String, target: String, headers: [(name: String, value: String)], bodyStart: Int, length: Int)?
        while true {
            if parsed == nil, let end = Sockets.headEnd(bytes) {
                let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let start = lines[0].split(separator: " ")
                guard start.count == 3 else { return nil }
                let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
                    guard let colon = line.firstIndex(of: ":") else { return nil }
                    return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
                let length = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
                parsed = (String(start[0]), String(start[1]), headers, end + 4, length)
            }
            if let p = parsed, bytes.count >= p.bodyStart + p.length {
                return Request(raw: bytes, method: p.method, target: p.target, headers: p.headers,
                               body: Array(bytes[p.bodyStart..<(p.bodyStart + p.length)]))
            }
            guard let n = try? Sockets.receive(c, into: chunk) else { return nil }
            bytes += chunk[0..<n]
        }
    }
}
