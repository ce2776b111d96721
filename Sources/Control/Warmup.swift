// Warm-up before a flip: plain HTTP/1.1 GETs to the idle color's endpoints (waking cold function
// instances), one at a time over blocking sockets with the configured timeout, off the data path.
import Glibc
import Reactor

public struct WarmupReport: Sendable {
    public var path: String
    public var endpoints: [String]
    /// One per completed request, in order.
    public var latenciesMs: [Double] = []
    /// Why the warm-up failed; nil when every request succeeded.
    public var failure: String?

    public var succeeded: Bool { failure == nil }

    public var value: ControlValue {
        var v: ControlValue = [
            "path": .string(path),
            "endpoints": ControlValue(endpoints),
            "requests": .int(latenciesMs.count),
            "latenciesMs": .array(latenciesMs.map { .double($0) }),
        ]
        let sorted = latenciesMs.sorted()
        if let first = sorted.first, let last = sorted.last {
            v.set("minMs", .double(first))
            v.set("p50Ms", .double(sorted[sorted.count / 2]))
            v.set("maxMs", .double(last))
        }
        if let failure { v.set("failure", .string(failure)) }
        return v
    }
}

public enum Warmup {
    /// Sends `warmup.requests` GETs round-robin over `endpoints`; stops at the first failure (no
    /// answer within `timeoutMs`, or a 5xx status).
    public static func run(_ warmup: Config.Warmup, endpoints: [Address]) -> WarmupReport {
        var report = WarmupReport(path: warmup.path, endpoints: endpoints.map(\.description))
        guard !endpoints.isEmpty else {
            report.failure = "the idle color has no serving endpoint"
            return report
        }
        for i in 0..<warmup.requests {
            let endpoint = endpoints[i % endpoints.count]
            let start = Sys.monotonicNs()
            switch get(endpoint, path: warmup.path, timeoutMs: warmup.timeoutMs) {
            case .success(let status) where status < 500:
                report.latenciesMs.append(Double(Sys.monotonicNs() - start) / 1_000_000)
            case .success(let status):
                report.failure = "\(endpoint) answered GET \(warmup.path) with \(status)"
                return report
            case .failure(let reason):
                report.failure = "\(endpoint) GET \(warmup.path): \(reason.text)"
                return report
            }
        }
        return report
    }

    struct Failure: Error { var text: String }

    /// One GET on a new connection; the status once the whole response has arrived.
    static func get(_ endpoint: Address, path: String, timeoutMs: Int) -> Result<Int, Failure> {
        guard let address = SocketAddress(host: endpoint.numericHost, port: endpoint.port) else {
            return .failure(Failure(text: "bad address"))
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Failure(text: "socket: \(reason(errno))")) }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Sys.monotonicMs() + UInt64(timeoutMs)
        if address.withSockAddr({ connect(fd, $0, $1) }) != 0 {
            let e = errno
            return .failure(Failure(text: e == EINPROGRESS || e == EAGAIN ? "connect timed out after \(timeoutMs) ms" : "connect: \(reason(e))"))
        }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(endpoint.written)\r\nUser-Agent: switchyard-warmup\r\n"
            + "X-Switchyard-Warmup: 1\r\nConnection: close\r\n\r\n"
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Failure(text: "send: \(reason(errno))"))
            }
            sent += n
        }
        var response = ResponseReader()
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            if Sys.monotonicMs() > deadline { return .failure(Failure(text: "no complete answer within \(timeoutMs) ms")) }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    return .failure(Failure(text: "no complete answer within \(timeoutMs) ms"))
                }
                return .failure(Failure(text: "recv: \(reason(errno))"))
            }
            switch response.feed(chunk[0..<n], closed: n == 0) {
            case .complete(let status): return .success(status)
            case .invalid(let why): return .failure(Failure(text: why))
            case .more: continue
            }
        }
    }

    private static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// Just enough of a response parser to know when a warm-up answer is complete: the status, then
/// a Content-Length body, a chunked body (up to its last chunk) or a body until close.
struct ResponseReader {
    enum Progress: Equatable {
        case more
        case complete(status: Int)
        case invalid(String)
    }

    private var buffer: [UInt8] = []
    private var status: Int?
    private var bodyStart = 0
    private var contentLength: Int?
    private var chunked = false

    mutating func feed(_ bytes: ArraySlice<UInt8>, closed: Bool) -> Progress {
        buffer.append(contentsOf: bytes)
        if status == nil {
            guard let end = headEnd() else {
                return closed ? .invalid("connection closed before a response head") : .more
            }
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            guard let first = lines.first, first.hasPrefix("HTTP/1."),
                  let code = first.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
            else { return .invalid("not an HTTP/1.x response") }
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = parts[0].lowercased()
                let value = parts[1].trimmedOfBlanks()
                if name == "content-length" { contentLength = Int(value) }
                if name == "transfer-encoding" && value.lowercased().contains("chunked") { chunked = true }
            }
            status = code
            bodyStart = end + 4
            // 1xx, 204 and 304 have no body.
            if code < 200 || code == 204 || code == 304 { return .complete(status: code) }
        }
        guard let status else { return .more }
        let body = buffer.count - bodyStart
        if let contentLength, !chunked {
            if body >= contentLength { return .complete(status: status) }
            return closed ? .invalid("connection closed \(contentLength - body) bytes before the end of the body") : .more
        }
        if chunked {
            // The last chunk and an empty trailer end the body.
            if body >= 5 && buffer.suffix(5).elementsEqual(Array("0\r\n\r\n".utf8)) { return .complete(status: status) }
            return closed ? .invalid("connection closed inside a chunked body") : .more
        }
        return closed ? .complete(status: status) : .more
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

extension StringProtocol {
    fileprivate func trimmedOfBlanks() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
