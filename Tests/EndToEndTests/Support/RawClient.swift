// A raw HTTP/1.1 client over one blocking socket: the test writes exact bytes and reads
// responses framed by Content-Length, chunked encoding or the connection's close.
import Foundation
import Glibc
import TestSupport

struct HTTPResponse {
    var version = ""
    var status = 0
    var reason = ""
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// Body bytes received (equal to body.count unless the body was discarded).
    var bodyCount = 0

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The echo upstream's JSON report of the request it received.
    func echo() throws -> EchoReport { try EchoReport(json: body) }
}

/// What `switchyard echo` saw: {name, method, path, target, headers, body, bodyBytes, connection, request}.
struct EchoReport {
    var name: String
    var method: String
    var path: String
    var target: String
    var headers: [(name: String, value: String)]
    var body: String
    var bodyBytes: Int
    var connection: Int
    var request: Int

    init(json: [UInt8]) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw TestError("echo body is not a JSON object: \(String(decoding: json, as: UTF8.self))")
        }
        name = object["name"] as? String ?? ""
        method = object["method"] as? String ?? ""
        path = object["path"] as? String ?? ""
        target = object["target"] as? String ?? ""
        headers = (object["headers"] as? [[String]] ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        body = object["body"] as? String ?? ""
        bodyBytes = (object["bodyBytes"] as? NSNumber)?.intValue ?? -1
        connection = (object["connection"] as? NSNumber)?.intValue ?? -1
        request = (object["request"] as? NSNumber)?.intValue ?? -1
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    func has(_ name: String) -> Bool { header(name) != nil }
}

/// How a connection ended when the test waited for its end.
enum ConnectionEnd: Equatable {
    /// Orderly close (read returned 0) or reset, after `bytes` more bytes.
    case closed(extraBytes: Int)
    /// Still open when the wait ended.
    case open
}

final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private(set) var isClosed = false
    /// Set after `startTLS`: every read and write goes through it.
    private(set) var tls: TestTLSSession?

    /// Connects to 127.0.0.1:port; reads and writes give up after `timeout` seconds.
    init(port: UInt16, timeout: Double = 5) throws {
        fd = try Sockets.connect(port: port)
        Sockets.setTimeouts(fd, seconds: timeout)
    }

    /// Handshakes TLS on the connection.
    @discardableResult
    func startTLS(_ options: TestTLSSession.Options) throws -> TestTLSSession {
        let s = try TestTLSSession(fd: fd, options)
        tls = s
        return s
    }

    deinit { close() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    func setTimeout(_ seconds: Double) { Sockets.setTimeouts(fd, seconds: seconds) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        if let tls {
            try bytes.withUnsafeBytes { raw in try tls.send(raw) }
            return
        }
        try bytes.withUnsafeBytes { raw in try Sockets.sendAll(fd, raw) }
    }

    /// Half-closes the sending side.
    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    // MARK: buffered reading

    private var buffered: Int { buffer.count - start }

    /// Reads once more into the buffer; throws on close, reset or timeout.
    private func fill() throws {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = try chunk.withUnsafeMutableBytes { raw in
            if let tls { return try tls.receive(into: raw) }
            return try Sockets.receive(fd, into: raw)
        }
        buffer += chunk[0..<n]
    }

    private func take(_ n: Int) -> ArraySlice<UInt8> {
        let s = buffer[start..<start + n]
        start += n
        return s
    }

    /// A line ending in LF (CR LF expected), without the line ending.
    private func readLine() throws -> String {
        while true {
            if let i = buffer[start...].firstIndex(of: 10) {
                var line = take(i - start + 1).dropLast()
                if line.last == 13 { line = line.dropLast() }
                return String(decoding: line, as: UTF8.self)
            }
            if buffered > 65536 { throw TestError("response line longer than 64 KiB") }
            try fill()
        }
    }

    /// Exactly `count` bytes (returned when `keep`, else counted and dropped).
    private func readBytes(_ count: Int, keep: Bool, into body: inout [UInt8]) throws {
        var left = count
        while left > 0 {
            if buffered == 0 { try fill() }
            let n = min(left, buffered)
            let s = take(n)
            if keep { body += s }
            left -= n
        }
    }

    /// Bytes that arrive within the read timeout, or the buffered ones (for tunnels).
    func readSome() throws -> [UInt8] {
        if buffered == 0 { try fill() }
        return Array(take(buffered))
    }

    /// Drops the bytes already buffered (read past a head); returns how many there were.
    func dropBuffered() -> Int {
        let n = buffered
        start += n
        return n
    }

    /// Reads exactly `count` raw bytes.
    func read(count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try readBytes(count, keep: true, into: &out)
        return out
    }

    /// Reads a response head only (status line and fields).
    func readHead() throws -> HTTPResponse {
        var r = HTTPResponse()
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw TestError("malformed status line: \(statusLine.debugDescription)")
        }
        r.version = String(parts[0])
        r.status = status
        r.reason = parts.count > 2 ? String(parts[2]) : ""
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw TestError("malformed field line: \(line.debugDescription)") }
            r.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return r
    }

    /// Reads the next response (a 1xx is returned as is: call again for the final one).
    /// `method` tells whether a body follows (HEAD has none); `keepBody: false` counts body bytes
    /// without keeping them (large bodies).
    func readResponse(method: String = "GET", keepBody: Bool = true) throws -> HTTPResponse {
        var r = try readHead()
        try readBody(&r, method: method, keepBody: keepBody)
        return r
    }

    /// The final response, skipping interim (1xx) ones.
    func readFinalResponse(method: String = "GET") throws -> HTTPResponse {
        while true {
            let r = try readResponse(method: method)
            if r.status >= 200 || r.status == 101 { return r }
        }
    }

    func readBody(_ r: inout HTTPResponse, method: String, keepBody: Bool = true) throws {
        if method == "HEAD" || r.status < 200 || r.status == 204 || r.status == 304 { return }
        var body: [UInt8] = []
        if let te = r.header("Transfer-Encoding") {
            guard te.lowercased().hasSuffix("chunked") else { throw TestError("unexpected Transfer-Encoding \(te)") }
            while true {
                let sizeLine = try readLine()
                let hex = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
                guard let size = Int(hex.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw TestError("bad chunk size line \(sizeLine.debugDescription)")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}   // trailers
                    break
                }
                try readBytes(size, keep: keepBody, into: &body)
                r.bodyCount += size
                guard try readLine().isEmpty else { throw TestError("chunk data not followed by CRLF") }
            }
        } else if let cl = r.header("Content-Length") {
            guard let n = Int(cl) else { throw TestError("bad Content-Length \(cl)") }
            try readBytes(n, keep: keepBody, into: &body)
            r.bodyCount = n
        } else {
            // Delimited by the close.
            while true {
                r.bodyCount += buffered
                let s = take(buffered)
                if keepBody { body += s }
                do { try fill() } catch SocketError.closed { break }
            }
        }
        r.body = body
    }

    /// Waits up to `timeout` seconds for the peer to close (orderly or by reset), counting any
    /// bytes that arrive first.
    func waitForClose(timeout: Double = 3) -> ConnectionEnd {
        var extra = buffered
        start = buffer.count
        let deadline = Date(timeIntervalSinceNow: timeout)
        setTimeout(0.05)
        defer { setTimeout(5) }
        while Date() < deadline {
            do {
                try fill()
                extra += buffered
                start = buffer.count
            } catch SocketError.timedOut {
                continue
            } catch {
                return .closed(extraBytes: extra)
            }
        }
        return .open
    }

    // MARK: one-liners

    /// Sends a request and reads its response.
    func exchange(_ request: String, method: String? = nil) throws -> HTTPResponse {
        try send(request)
        return try readResponse(method: method ?? String(request.prefix { $0 != " " }))
    }

    /// Sends `method path` with `Expect: 100-continue` and a `body.count` Content-Length, waits
    /// for the 100 (it throws on anything else), then sends the body: its final response.
    func sendAfterContinue(_ method: String, _ path: String, body: String) throws -> HTTPResponse {
        try send("\(method) \(path) HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
        let interim = try readResponse(method: method)
        guard interim.status == 100 else { throw TestError("expected 100 Continue, got \(interim.status) \(interim.bodyText)") }
        try send(body)
        return try readResponse(method: method)
    }
}

/// `GET path` with the Host header and any extra lines ("Name: value").
func get(_ path: String, host: String = "example.test", _ extra: [String] = []) -> String {
    var s = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
    for h in extra { s += h + "\r\n" }
    return s + "\r\n"
}
