// The control plane's HTTP client: one request, one answer, on a blocking socket with timeouts,
// in TLS for https:// (verified against the system store or a CA file, the name checked), run
// off the data path (a rollout's gate reading, a credentials refresh). HTTP/1.0 with the close
// as the end of the answer: no keep-alive to manage for a request a minute.
import Glibc
import Reactor
import Routing
public import TLS

public struct FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    /// Nothing answered: the name did not resolve, the connection failed, or not one byte came
    /// back in time. A caller asking a server that is only there on some machines (EC2 instance
    /// metadata) reads this as "not here" rather than as a broken server.
    public var unreachable: Bool
    public init(_ description: String, unreachable: Bool = false) {
        self.description = description
        self.unreachable = unreachable
    }
}

public struct FetchRequest: Sendable {
    public var method: String
    /// The path and query, as sent.
    public var path: String
    /// Fields besides Host, which the URL gives; each is checked before it is sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String = "GET", path: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path.isEmpty ? "/" : path
        self.headers = headers
        self.body = body
    }
}

public struct FetchResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The first field named `name` (any case).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

public enum Fetch {
    /// Sends `request` to `url`'s server and reads the whole answer. `caFile` verifies an https
    /// server (nil: the system store). Answers larger than `maxBytes` are refused.
    public static func perform(_ request: FetchRequest, to url: HTTPURL, caFile: String? = nil, timeout: Double = 2,
                               maxBytes: Int = 1 << 20) throws(FetchError) -> FetchResponse {
        try perform(request, to: url, tls: TLSClientSettings(caFile: caFile), timeout: timeout, maxBytes: maxBytes)
    }

    /// The same, with the whole TLS policy (a client certificate, `verify`) for an https server.
    public static func perform(_ request: FetchRequest, to url: HTTPURL, tls: TLSClientSettings, timeout: Double = 2,
                               maxBytes: Int = 1 << 20) throws(FetchError) -> FetchResponse {
        try FetchAnswer.parse(try exchange(serialize(request, host: url.authority), to: url, tls: tls, timeout: timeout, maxBytes: maxBytes))
    }

    /// The answer's bytes as the server sent them, head and body, for a caller that reads
    /// them itself.
    public static func answer(_ request: FetchRequest, to url: HTTPURL, caFile: String? = nil, timeout: Double = 2,
                              maxBytes: Int = 1 << 20) throws(FetchError) -> [UInt8] {
        try exchange(serialize(request, host: url.authority), to: url, tls: TLSClientSettings(caFile: caFile), timeout: timeout,
                     maxBytes: maxBytes)
    }

    /// The request's bytes; a field that would break the head (a CR, LF or NUL in it, a name
    /// that is not a token) is refused rather than sent.
    static func serialize(_ request: FetchRequest, host: String) throws(FetchError) -> [UInt8] {
        guard isToken(request.method) else { throw FetchError("method \"\(request.method)\" is not a token") }
        guard request.path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw FetchError("the path holds white space or a control character") }
        var head = "\(request.method) \(request.path) HTTP/1.0\r\nHost: \(host)\r\n"
        for (name, value) in request.headers {
            guard isToken(name) else { throw FetchError("field name \"\(name)\" is not a token") }
            guard value.utf8.allSatisfy({ $0 != 13 && $0 != 10 && $0 != 0 }) else {
                throw FetchError("field \(name): the value holds a line break or NUL")
            }
            head += "\(name): \(value)\r\n"
        }
        if !request.body.isEmpty || request.method == "POST" || request.method == "PUT" {
            head += "Content-Length: \(request.body.count)\r\n"
        }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + request.body
    }

    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Sends `request` (whole bytes) and answers what the server sent until its close.
    static func exchange(_ request: [UInt8], to url: HTTPURL, tls: TLSClientSettings, timeout: Double,
                         maxBytes: Int) throws(FetchError) -> [UInt8] {
        let fd = try connect(url, timeout: timeout)
        defer { close(fd) }
        let stream = try startStream(fd: fd, url: url, tls: tls)
        try stream.send(request)
        var answer: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 1)
        defer { chunk.deallocate() }
        let deadline = Condition.now() + timeout
        while true {
            let n: Int
            do throws(FetchError) { n = try stream.receive(chunk, timeout: timeout) } catch {
                throw FetchError(error.description, unreachable: answer.isEmpty)
            }
            if n == 0 { break }
            answer += chunk[0..<n]
            if answer.count > maxBytes { throw FetchError("answer over \(maxBytes) bytes") }
            if Condition.now() > deadline { throw FetchError("no complete answer within \(timeout)s") }
        }
        return answer
    }

    static func startStream(fd: Int32, url: HTTPURL, tls: TLSClientSettings) throws(FetchError) -> any FetchStream {
        url.secure ? try TLSFetchStream(fd: fd, host: url.host, port: url.port, tls: tls) : PlainFetchStream(fd: fd)
    }

    /// A connected blocking socket with send and receive timeouts of `timeout`; each address
    /// the name resolves to is tried in turn.
    static func connect(_ url: HTTPURL, timeout: Double) throws(FetchError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(url.host, String(url.port), &hints, &list) == 0, list != nil else {
            throw FetchError("cannot resolve \(url.host)", unreachable: true)
        }
        defer { freeaddrinfo(list) }
        let whole = max(timeout, 0.001)
        var tv = timeval(tv_sec: Int(whole), tv_usec: Int((whole - Double(Int(whole))) * 1_000_000))
        var lastErrno: Int32 = 0
        var next = list
        while let a = next {
            next = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastErrno = errno; continue }
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
            lastErrno = errno
            close(fd)
        }
        throw FetchError("cannot connect to \(url.authority): \(String(cString: strerror(lastErrno)))", unreachable: true)
    }
}
