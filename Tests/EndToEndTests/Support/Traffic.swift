// Helpers for the routing and mirroring end-to-end tests: many requests over several pipelined
// keep-alive connections at once, assignment cookies, echo upstreams with a delay, and an
// in-test shadow that records every complete request it receives.
import Foundation
import Glibc
import TestSupport
import XCTest

/// The `Set-Cookie` a response carries for `name`: its value, or nil.
func setCookieValue(_ r: HTTPResponse, named name: String) -> String? {
    for line in r.headers(named: "Set-Cookie") {
        let pair = line.prefix { $0 != ";" }
        guard let eq = pair.firstIndex(of: "=") else { continue }
        if pair[..<eq].trimmingCharacters(in: .whitespaces) == name { return String(pair[pair.index(after: eq)...]) }
    }
    return nil
}

/// The bucket in an assignment cookie value `1.<bucket>.<tag>[.<sig>]`, or nil.
func cookieBucket(_ value: String) -> Int? {
    let parts = value.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 3, parts[0] == "1" else { return nil }
    return Int(parts[1])
}

/// FNV-1a 64 of `salt`, a 0x00 byte and `key`, mod 10,000: the bucket a sticky key maps to, as
/// every instance must compute it.
func stickyKeyBucket(salt: String, key: String) -> Int {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in Array(salt.utf8) + [0] + Array(key.utf8) {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return Int(hash % 10_000)
}

/// Percentile `p` (0...100) of `values`, nearest rank.
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// Results gathered from several threads.
private final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var responses: [HTTPResponse?]
    private var errors: [String] = []

    init(count: Int) { responses = Array(repeating: nil, count: count) }

    func store(_ i: Int, _ r: HTTPResponse) { lock.withLock { responses[i] = r } }
    func fail(_ message: String) { lock.withLock { errors.append(message) } }
    var firstError: String? { lock.withLock { errors.first } }
    var all: [HTTPResponse?] { lock.withLock { responses } }
}

extension EndToEndTestCase {
    /// A `switchyard echo` upstream that waits `delayMs` before every answer.
    func startEcho(name: String, delayMs: Int, file: StaticString = #filePath, line: UInt = #line) throws -> EchoUpstream {
        let p = adopt(try ChildProcess(switchyard: ["echo", "--listen", "127.0.0.1:0", "--name", name,
                                                    "--delay-ms", String(delayMs)]))
        guard let text = p.waitForStderrLine(containing: "listening on "), let port = Self.port(after: "listening on ", in: text) else {
            p.kill()
            XCTFail("echo upstream '\(name)' did not start: \(p.stderr)", file: file, line: line)
            throw TestError("echo upstream did not start")
        }
        return EchoUpstream(process: p, port: port)
    }

    /// Sends `count` requests, `request(i)` for i in 0..<count, over `connections` keep-alive
    /// connections in parallel (request i on connection i % connections), pipelined `batch` at
    /// a time; returns the responses in request order. Throws on the first broken exchange.
    /// Responses keep their status, body and only the headers in `keep` (parsing every header
    /// of 20,000 responses in a debug build costs more than the proxy does).
    func sendMany(_ proxy: RunningProxy, count: Int, connections: Int = 4, batch: Int = 64,
                  keep: [String] = ["X-Echo-Name", "X-Switchyard-Variant", "Set-Cookie"],
                  request: @escaping @Sendable (Int) -> String) throws -> [HTTPResponse] {
        let collector = Collector(count: count)
        let group = DispatchGroup()
        let port = proxy.port
        for c in 0..<connections {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let client = try BulkClient(port: port, keep: keep)
                    let mine = Array(stride(from: c, to: count, by: connections))
                    var at = 0
                    while at < mine.count {
                        let slice = mine[at..<min(at + batch, mine.count)]
                        let texts = slice.map(request)
                        try client.send(texts.joined())
                        for (i, text) in zip(slice, texts) {
                            collector.store(i, try client.readResponse(head: text.hasPrefix("HEAD ")))
                        }
                        at += batch
                    }
                } catch {
                    collector.fail("connection \(c): \(error)")
                }
            }
            thread.start()
        }
        group.wait()
        if let e = collector.firstError { throw TestError(e) }
        return collector.all.map { $0! }
    }

    /// An in-test upstream that reads whole requests (Content-Length or chunked bodies), records
    /// each one's head and body size once it is complete, and answers 200 with an empty body on
    /// the same keep-alive connection. `silent`: it reads but never answers. `early`: it answers
    /// as soon as the head arrives, then reads (and discards) the body, as servers that refuse a
    /// request without reading it do.
    func startRecordingServer(silent: Bool = false, early: Bool = false) throws -> RecordingServer {
        let recorder = RecordingServer.Log()
        let server = try startServer { connection, _ in
            RecordingServer.serve(connection, recorder: recorder, silent: silent, early: early)
        }
        return RecordingServer(server: server, log: recorder)
    }
}

/// What an in-test shadow received.
struct RecordedRequest {
    var head: String
    var bodyBytes: Int

    /// ("\r\n" is one Character in Swift, so split on it, never on "\r".)
    var requestLine: String { head.split(separator: "\r\n").first.map(String.init) ?? "" }
    var method: String { String(requestLine.prefix { $0 != " " }) }

    /// The value of the first header called `name` (case-insensitive).
    func header(_ name: String) -> String? { headers(named: name).first }

    /// The values of every header called `name` (case-insensitive), in order.
    func headers(named name: String) -> [String] {
        head.split(separator: "\r\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { return nil }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
}

struct RecordingServer {
    let server: RawServer
    let log: Log

    var port: UInt16 { server.port }
    var endpoint: String { "127.0.0.1:\(server.port)" }
    var requests: [RecordedRequest] { log.requests }

    /// Waits up to `timeout` seconds until `predicate` holds for the recorded requests.
    @discardableResult
    func waitFor(timeout: Double = 5, _ predicate: ([RecordedRequest]) -> Bool) -> Bool {
        waitUntil(timeout: timeout) { predicate(requests) }
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [RecordedRequest] = []
        var requests: [RecordedRequest] { lock.withLock { recorded } }
        func append(_ r: RecordedRequest) { lock.withLock { recorded.append(r) } }
    }

    /// One connection: complete requests only are recorded; a connection cut mid-request
    /// records nothing for that request.
    static func serve(_ connection: RawConnection, recorder: Log, silent: Bool, early: Bool) {
        let fd = connection.fd
        Sockets.setTimeouts(fd, seconds: 30)
        var buffer: [UInt8] = []
        func more() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16384)
            guard let n = try? chunk.withUnsafeMutableBytes({ raw in try Sockets.receive(fd, into: raw) }) else { return false }
            buffer += chunk[0..<n]
            return true
        }
        func line() -> String? {
            while true {
                if let i = buffer.firstIndex(of: 10) {
                    var l = Array(buffer[0..<i])
                    buffer.removeFirst(i + 1)
                    if l.last == 13 { l.removeLast() }
                    return String(decoding: l, as: UTF8.self)
                }
                if !more() { return nil }
            }
        }
        func skip(_ n: Int) -> Bool {
            var left = n
            while left > 0 {
                if buffer.isEmpty && !more() { return false }
                let take = min(left, buffer.count)
                buffer.removeFirst(take)
                left -= take
            }
            return true
        }
        while true {
            var headLines: [String] = []
            while true {
                guard let l = line() else { return }
                if l.isEmpty { break }
                headLines.append(l)
            }
            let head = headLines.joined(separator: "\r\n") + "\r\n\r\n"
            let request = RecordedRequest(head: head, bodyBytes: 0)
            if early {
                guard connection.send("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n") else { return }
            }
            var bodyBytes = 0
            if request.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
                while true {
                    guard let sizeLine = line(),
                          let size = Int(sizeLine.prefix { $0 != ";" }.trimmingCharacters(in: .whitespaces), radix: 16)
                    else { return }
                    if size == 0 {
                        while let t = line(), !t.isEmpty {}
                        break
                    }
                    guard skip(size + 2) else { return }
                    bodyBytes += size
                }
            } else if let cl = request.header("Content-Length").flatMap({ Int($0) }) {
                guard skip(cl) else { return }
                bodyBytes = cl
            }
            recorder.append(RecordedRequest(head: head, bodyBytes: bodyBytes))
            if silent {
                connection.waitForPeerClose(timeout: 30)
                return
            }
            if !early { guard connection.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") else { return } }
        }
    }
}

/// A whole proxy config: a 127.0.0.1:0 listener, `upstreams` (name to the upstream's JSON
/// object) and `routes` (route objects as JSON), with test-sized timeouts. Two workers: bulk
/// tests finish sooner, and every decision must hold whichever worker makes it. `controlSocket`
/// adds a control socket at that path; `admin` an admin listener (/metrics) on a kernel-chosen port.
func routingConfig(upstreams: [(String, String)], routes: [String], workers: Int = 2, responseMs: Int = 3000,
                   controlSocket: String? = nil, admin: Bool = false) -> String {
    """
    {
      "listeners": [ { "address": "127.0.0.1:0" } ],
      "workers": \(workers),
      "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": \(responseMs), "idleMs": 5000, "drainMs": 2000 },
      "upstreams": {
        \(upstreams.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ",\n    "))
      },
      "routes": [
        \(routes.joined(separator: ",\n    "))
      ]\(controlSocket.map { ",\n  \"control\": { \"socket\": \"\($0)\" }" } ?? "")\(admin ? ",\n  \"admin\": { \"address\": \"127.0.0.1:0\" }" : "")
    }
    """
}

/// `{"endpoints": [...]}` for a plain upstream.
func pool(_ endpoints: String...) -> String {
    "{ \"endpoints\": [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))] }"
}

/// A lean keep-alive client for bulk traffic: scans responses with memchr / memmem instead of
/// building a String per line. Content-Length framed responses only (what echo and the
/// proxy's own answers use).
private final class BulkClient {
    let fd: Int32
    private let keep: [[UInt8]]
    private var buffer: UnsafeMutableRawPointer
    private var capacity = 1 << 20
    private var start = 0
    private var end = 0

    init(port: UInt16, keep: [String]) throws {
        fd = try Sockets.connect(port: port)
        Sockets.setTimeouts(fd, seconds: 10)
        self.keep = keep.map { Array($0.lowercased().utf8) }
        buffer = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit {
        Glibc.close(fd)
        buffer.deallocate()
    }

    func send(_ text: String) throws {
        var text = text
        try text.withUTF8 { try Sockets.sendAll(fd, UnsafeRawBufferPointer($0)) }
    }

    private func fill() throws {
        if start == end {
            start = 0
            end = 0
        } else if end == capacity {
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }
        guard end < capacity else { throw TestError("response larger than \(capacity) bytes") }
        end += try Sockets.receive(fd, into: UnsafeMutableRawBufferPointer(start: buffer + end, count: capacity - end))
    }

    /// The offset just past the first CR LF CR LF at or after `start`.
    private func findHeadEnd() -> Int? {
        var p = UnsafeRawPointer(buffer + start)
        let stop = UnsafeRawPointer(buffer + end)
        while p < stop, let lf = memchr(p, 10, stop - p) {
            let at = UnsafeRawPointer(lf)
            if at + 2 < stop && at.load(fromByteOffset: 1, as: UInt8.self) == 13 && at.load(fromByteOffset: 2, as: UInt8.self) == 10 {
                return at + 3 - UnsafeRawPointer(buffer)
            }
            p = at + 1
        }
        return nil
    }

    func readResponse(head isHead: Bool) throws -> HTTPResponse {
        var headEnd: Int
        while true {
            if let at = findHeadEnd() {
                headEnd = at
                break
            }
            try fill()
        }
        var r = HTTPResponse()
        let bytes = UnsafeRawBufferPointer(start: buffer + start, count: headEnd - start)
        guard bytes.count > 12, bytes[0] == UInt8(ascii: "H") else {
            throw TestError("malformed response: \(String(decoding: bytes.prefix(80), as: UTF8.self))")
        }
        r.status = Int(bytes[9] - 48) * 100 + Int(bytes[10] - 48) * 10 + Int(bytes[11] - 48)
        var contentLength = 0
        var line = UnsafeRawPointer(memchr(bytes.baseAddress!, 10, bytes.count)!) + 1
        let last = bytes.baseAddress! + bytes.count - 2
        while line < last {
            let lineEnd = UnsafeRawPointer(memchr(line, 10, last + 2 - line)!)
            if let colon = memchr(line, 58, lineEnd - line) {
                let nameCount = UnsafeRawPointer(colon) - line
                var valueStart = UnsafeRawPointer(colon) + 1
                while valueStart < lineEnd && valueStart.load(as: UInt8.self) == 32 { valueStart += 1 }
                let valueCount = lineEnd - valueStart - 1   // CR
                if nameCount == 14 && strncasecmp(line, "content-length", 14) == 0 {
                    contentLength = Int(String(decoding: UnsafeRawBufferPointer(start: valueStart, count: valueCount), as: UTF8.self)) ?? 0
                }
                for name in keep where name.count == nameCount && strncasecmp(line, name.map { CChar(bitPattern: $0) } + [0], nameCount) == 0 {
                    r.headers.append((String(decoding: UnsafeRawBufferPointer(start: line, count: nameCount), as: UTF8.self),
                                      String(decoding: UnsafeRawBufferPointer(start: valueStart, count: valueCount), as: UTF8.self)))
                }
            }
            line = lineEnd + 1
        }
        start = headEnd
        if isHead || r.status == 204 || r.status == 304 { return r }
        while end - start < contentLength { try fill() }
        r.body = Array(UnsafeRawBufferPointer(start: buffer + start, count: contentLength))
        r.bodyCount = contentLength
        start += contentLength
        return r
    }
}
