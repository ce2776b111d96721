// `switchyard echo`: a small test upstream that answers with what it received (name, method,
// path, headers, body) as JSON. Blocking sockets and a thread per connection: it is a test and
// demo tool, not the data path. Query switches: `bytes=N` answers N bytes of body instead,
// `chunked=1` answers chunked, `status=N` sets the status, `delay=MS` waits before answering.
import Dispatch
import Foundation
import Glibc
import HTTP1
import Reactor

final class EchoServer: @unchecked Sendable {
    /// The longest delay a request (`?delay=MS`) or `--delay-ms` may ask for.
    static let maxDelayMs = 60_000

    let name: String
    let delayMs: Int
    let listenFd: Int32
    let address: SocketAddress
    private let lock = NSLock()
    private var connections = 0
    private var requests = 0

    init(listen: SocketAddress, name: String, delayMs: Int) throws {
        self.name = name
        self.delayMs = delayMs
        let fd = try Sys.blockingListener(listen, backlog: 1024)
        listenFd = fd
        address = Sys.localAddress(fd) ?? listen
    }

    /// Accepts forever on a background thread.
    func start() {
        let t = Thread { [self] in self.acceptLoop() }
        t.stackSize = 1 << 20
        t.start()
    }

    private func acceptLoop() {
        while let c = Sys.acceptBlocking(listenFd) {
            Sys.setNoDelay(c)
            let n = lock.withLock { () -> Int in connections += 1; return connections }
            let t = Thread { [self] in self.serve(c, connectionNumber: n) }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    private func readMore(_ fd: Int32, into buf: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buf.append(contentsOf: chunk[0..<n])
        return true
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    private func serve(_ fd: Int32, connectionNumber: Int) {
        defer { Glibc.close(fd) }
        var buf: [UInt8] = []
        var parser = RequestParser(limits: HTTPLimits(maxHeadBytes: 65536, maxHeaders: 200, maxURIBytes: 16384))
        while true {
            var head = RequestHead()
            parser.reset()
            var status: ParseStatus = .incomplete
            while true {
                status = buf.withUnsafeBytes { parser.parse($0, into: &head) }
                if status != .incomplete { break }
                if !readMore(fd, into: &buf) { return }
            }
            guard status == .complete else {
                _ = sendAll(fd, Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                return
            }
            let headBytes = Array(buf[0..<Int(head.headLength)])
            buf.removeFirst(Int(head.headLength))
            let fields = headBytes.withUnsafeBytes { raw in
                head.headers.map { f in
                    (String(decoding: f.name(in: raw), as: UTF8.self), String(decoding: f.value(in: raw), as: UTF8.self))
                }
            }
            let method = String(decoding: headBytes[Int(head.methodStart)..<Int(head.methodEnd)], as: UTF8.self)
            let target = String(decoding: headBytes[Int(head.targetStart)..<Int(head.targetEnd)], as: UTF8.self)
            let path = String(decoding: headBytes[Int(head.targetStart)..<Int(head.pathEnd)], as: UTF8.self)
            let query = Self.query(target)

            if head.upgrade {
                let upgrade = fields.first { $0.0.lowercased() == "upgrade" }?.1 ?? "websocket"
                guard sendAll(fd, Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: \(upgrade)\r\nConnection: Upgrade\r\nX-Echo-Name: \(name)\r\n\r\n".utf8)) else { return }
                if !buf.isEmpty { guard sendAll(fd, buf) else { return } }
                buf.removeAll()
                while readMore(fd, into: &buf) {
                    guard sendAll(fd, buf) else { return }
                    buf.removeAll()
                }
                return
            }
            if head.expectContinue {
                guard sendAll(fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return }
            }
            // Body.
            var body: [UInt8] = []
            var bodyBytes = 0
            let keepLimit = 1 << 20
            switch head.framing {
            case .contentLength(let n):
                var left = Int(n)
                while left > 0 {
                    if buf.isEmpty && !readMore(fd, into: &buf) { return }
                    let take = min(left, buf.count)
                    if body.count < keepLimit { body.append(contentsOf: buf[0..<min(take, keepLimit - body.count)]) }
                    buf.removeFirst(take)
                    left -= take
                    bodyBytes += take
                }
            case .chunked:
                guard Self.readChunked(fd: fd, buf: &buf, body: &body, total: &bodyBytes, keepLimit: keepLimit, more: { readMore(fd, into: &$0) }) else { return }
            default:
                break
            }
            let n = lock.withLock { () -> Int in requests += 1; return requests }
            var code = Int(query["status"] ?? "") ?? 200
            // A minute at most, else 400: `?delay=5000000` overflowed UInt32 microseconds and trapped.
            var delay = min(delayMs, Self.maxDelayMs)
            if let text = query["delay"] {
                if let ms = Int(text), (0...Self.maxDelayMs).contains(ms) { delay = ms } else { code = 400 }
            }
            if delay > 0 { usleep(useconds_t(delay) * 1000) }
            var extra = "X-Echo-Name: \(name)\r\nX-Echo-Connection: \(connectionNumber)\r\nX-Echo-Request: \(n)\r\n"
            if !head.keepAlive { extra += "Connection: close\r\n" }
            let reason = String(describing: HTTPStatus.reason(code))
            if let sizeText = query["bytes"], let size = Int(sizeText) {
                let chunkedReply = query["chunked"] == "1"
                var h = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: application/octet-stream\r\n\(extra)"
                h += chunkedReply ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: \(size)\r\n\r\n"
                guard sendAll(fd, Array(h.utf8)) else { return }
                if head.method != .head {
                    let block = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
                    var left = size
                    while left > 0 {
                        let take = min(left, block.count)
                        if chunkedReply {
                            guard sendAll(fd, Array((String(take, radix: 16) + "\r\n").utf8) + block[0..<take] + Array("\r\n".utf8)) else { return }
                        } else {
                            guard sendAll(fd, Array(block[0..<take])) else { return }
                        }
                        left -= take
                    }
                    if chunkedReply { guard sendAll(fd, Array("0\r\n\r\n".utf8)) else { return } }
                }
            } else {
                let object: [String: Any] = [
                    "name": name, "method": method, "path": path, "target": target,
                    "headers": fields.map { [$0.0, $0.1] },
                    "body": String(decoding: body, as: UTF8.self), "bodyBytes": bodyBytes,
                    "connection": connectionNumber, "request": n,
                ]
                let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
                var h = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: application/json\r\n\(extra)"
                h += "Content-Length: \(json.count)\r\n\r\n"
                guard sendAll(fd, Array(h.utf8) + (head.method == .head ? [] : [UInt8](json))) else { return }
            }
            if !head.keepAlive { return }
        }
    }

    static func query(_ target: String) -> [String: String] {
        guard let q = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out: [String: String] = [:]
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            out[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return out
    }

    /// Decodes a chunked body (the echo reports the payload, not the framing).
    static func readChunked(fd: Int32, buf: inout [UInt8], body: inout [UInt8], total: inout Int, keepLimit: Int,
                            more: (inout [UInt8]) -> Bool) -> Bool {
        func line() -> [UInt8]? {
            while true {
                if let i = buf.firstIndex(of: 10) {
                    var l = Array(buf[0..<i])
                    buf.removeFirst(i + 1)
                    if l.last == 13 { l.removeLast() }
                    return l
                }
                if !more(&buf) { return nil }
            }
        }
        while true {
            guard let sizeLine = line() else { return false }
            let hex = String(decoding: sizeLine.prefix { $0 != UInt8(ascii: ";") }, as: UTF8.self)
            guard let size = Int(hex, radix: 16) else { return false }
            if size == 0 {
                while let t = line(), !t.isEmpty {}
                return true
            }
            var left = size
            while left > 0 {
                if buf.isEmpty && !more(&buf) { return false }
                let take = min(left, buf.count)
                if body.count < keepLimit { body.append(contentsOf: buf[0..<min(take, keepLimit - body.count)]) }
                buf.removeFirst(take)
                left -= take
                total += take
            }
            guard line() != nil else { return false }
        }
    }
}
