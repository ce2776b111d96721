// Requests Switchyard must accept, and what the parser must report about them.

import XCTest
@testable import HTTP1

final class RequestParserTests: XCTestCase {
    func testSimpleGet() {
        let text = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
        let r = parseRequest(text)
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.method, .get)
        XCTAssertEqual(r.method, "GET")
        XCTAssertEqual(r.head.methodStart, 0)
        XCTAssertEqual(r.target, "/index.html")
        XCTAssertEqual(r.path, "/index.html")
        XCTAssertEqual(r.head.version, .http11)
        XCTAssertEqual(r.head.framing, BodyFraming.none)
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertFalse(r.head.upgrade)
        XCTAssertFalse(r.head.expectContinue)
        XCTAssertEqual(r.head.headers.count, 2)
        XCTAssertEqual(r.head.hostIndex, 0)
        XCTAssertEqual(r.head.headers[0].kind, .host)
        XCTAssertEqual(r.value("host"), "example.com")
        XCTAssertEqual(r.head.headers[1].kind, .other)
        XCTAssertEqual(Int(r.head.headLength), text.utf8.count)
    }

    func testMethodsAreClassifiedCaseSensitively() {
        let cases: [(String, HTTP1.Method)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("PATCH", .patch), ("TRACE", .trace), ("OPTIONS", .options), ("get", .other), ("PURGE", .other),
            ("M-SEARCH", .other),
        ]
        for (token, method) in cases {
            let r = parseRequest("\(token) / HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(r.status, .complete, token)
            XCTAssertEqual(r.head.method, method, token)
            XCTAssertEqual(r.method, token)
        }
    }

    func testPostWithContentLength() {
        let r = parseRequest("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.method, .post)
        XCTAssertEqual(r.head.framing, .contentLength(11))
        XCTAssertEqual(r.head.headers[1].kind, .contentLength)
        XCTAssertEqual(Int(r.head.headLength), r.bytes.count - 11)
    }

    func testContentLengthZeroIsNoBody() {
        XCTAssertEqual(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").head.framing, BodyFraming.none)
    }

    func testRepeatedIdenticalContentLengthsAreOne() {
        for text in ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n"] {
            let r = parseRequest(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.head.framing, .contentLength(5), text)
        }
        let max = parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n")
        XCTAssertEqual(max.head.framing, .contentLength(Int64.max))
    }

    func testChunked() {
        for te in ["chunked", "Chunked", "CHUNKED", " chunked ", "chunked,", ", chunked"] {
            let r = parseRequest("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(te)\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(r.status, .complete, te)
            XCTAssertEqual(r.head.framing, .chunked, te)
            let te = r.head.headers[r.head.firstIndex(of: .transferEncoding)!]
            XCTAssertFalse(te.hopByHop, "Transfer-Encoding travels with the chunked body")
        }
    }

    func testPipelinedRequestsLeaveTheRest() {
        let first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        let second = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
        let bytes = Array((first + second).utf8)
        var parser = RequestParser(limits: HTTPLimits())
        var head = RequestHead()
        var status = bytes.withUnsafeBytes { parser.parse($0, into: &head) }
        XCTAssertEqual(status, .complete)
        XCTAssertEqual(Int(head.headLength), first.utf8.count)
        let rest = Array(bytes[Int(head.headLength)...])
        status = rest.withUnsafeBytes { parser.parse($0, into: &head) }
        XCTAssertEqual(status, .complete)
        XCTAssertEqual(String(decoding: rest[Int(head.targetStart)..<Int(head.targetEnd)], as: UTF8.self), "/b")
        XCTAssertEqual(head.headers.count, 1, "headers are replaced, not appended to")
    }

    func testLeadingEmptyLinesAreSkippedAndCounted() {
        for prefix in ["\r\n", "\r\n\r\n", "\n", "\r\n\n"] {
            let text = prefix + "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            let r = parseRequest(text)
            XCTAssertEqual(r.status, .complete, prefix.debugDescription)
            XCTAssertEqual(Int(r.head.methodStart), prefix.utf8.count)
            XCTAssertEqual(r.method, "GET")
            XCTAssertEqual(Int(r.head.headLength), text.utf8.count)
        }
        XCTAssertEqual(parseRequest("\r\n\r\n").status, .incomplete)
        XCTAssertEqual(parseRequest("\r").status, .incomplete)
    }

    func testBareLFLineEndings() {
        let r = parseRequest("GET / HTTP/1.1\nHost: a\nX-A: 1\r\n\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.value("x-a"), "1")
        XCTAssertEqual(Int(r.head.headLength), r.bytes.count)
    }

    func testAbsoluteFormTarget() {
        for target in ["http://example.com/a/b?x=1", "HTTPS://example.com:8443/", "http://[::1]:8080/p", "http://h"] {
            let r = parseRequest("GET \(target) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            XCTAssertEqual(r.status, .complete, target)
            XCTAssertEqual(r.target, target)
        }
        let r = parseRequest("GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        XCTAssertEqual(r.path, "http://example.com/a/b")
    }

    /// RFC 9112 3.2.2: the authority of an absolute-form target replaces Host, so the parser
    /// reports where it is; other forms report none.
    func testAbsoluteFormAuthority() {
        let cases: [(target: String, authority: String?)] = [
            ("http://a.example/x", "a.example"), ("HTTPS://a.example:8443", "a.example:8443"),
            ("http://[::1]:8080/p?q", "[::1]:8080"), ("http://h?x=/y", "h"), ("/x", nil), ("*", nil),
        ]
        for c in cases {
            let method = c.target == "*" ? "OPTIONS" : "GET"
            let r = parseRequest("\(method) \(c.target) HTTP/1.1\r\nHost: b.example\r\n\r\n")
            XCTAssertEqual(r.status, .complete, c.target)
            XCTAssertEqual(r.head.hasAbsoluteTarget, c.authority != nil, c.target)
            let authority = String(decoding: r.bytes[Int(r.head.authorityStart)..<Int(r.head.authorityEnd)], as: UTF8.self)
            XCTAssertEqual(authority, c.authority ?? "", c.target)
        }
        let forwarded = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=1.2.3.4\r\n\r\n")
        XCTAssertEqual(forwarded.head.headers[1].kind, .forwarded)
    }

    func testQueryStringSetsPathEnd() {
        let r = parseRequest("GET /search?q=a?b&c=/d HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.path, "/search")
        XCTAssertEqual(r.target, "/search?q=a?b&c=/d")
        let noQuery = parseRequest("GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(noQuery.head.pathEnd, noQuery.head.targetEnd)
    }

    func testAsteriskAndAuthorityForms() {
        let options = parseRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(options.status, .complete)
        XCTAssertEqual(options.target, "*")
        let connect = parseRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        XCTAssertEqual(connect.status, .complete)
        XCTAssertEqual(connect.head.method, .connect)
        XCTAssertEqual(connect.target, "example.com:443")
    }

    func testKeepAliveRules() {
        let cases: [(String, Bool)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", false),
            ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\r\n", true),
            ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
        ]
        for (text, keepAlive) in cases {
            let r = parseRequest(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.head.keepAlive, keepAlive, text)
        }
        let http10 = parseRequest("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(http10.head.version, .http10)
        XCTAssertEqual(http10.head.hostIndex, -1, "HTTP/1.0 needs no Host")
    }

    func testHopByHopHeaders() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret ,x-trace\r\nKeep-Alive: 5\r\n"
            + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: websocket\r\n"
            + "x-secret: 1\r\nX-TRACE: 2\r\nX-Kept: 3\r\nTransfer-Encoding: chunked\r\nCookie: c=1\r\n\r\n"
        let r = parseRequest(text)
        XCTAssertEqual(r.status, .complete)
        let expected: [String: Bool] = [
            "host": false, "connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
            "trailer": false, "upgrade": true, "x-secret": true, "x-trace": true, "x-kept": false,
            "transfer-encoding": false, "cookie": false,
        ]
        for (name, hop) in expected {
            XCTAssertEqual(r.field(name)?.hopByHop, hop, name)
        }
        XCTAssertFalse(r.head.upgrade, "Connection does not list upgrade")
    }

    func testConnectionCannotStripFramingOrHost() {
        let r = parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            + "Connection: content-length, host, X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nabc")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.field("content-length")?.hopByHop, false)
        XCTAssertEqual(r.field("host")?.hopByHop, false)
        XCTAssertEqual(r.field("x-forwarded-for")?.hopByHop, true)
    }

    func testHeaderKinds() {
        let names: [(String, HeaderKind)] = [
            ("Host", .host), ("Content-Length", .contentLength), ("Transfer-Encoding", .transferEncoding),
            ("Connection", .connection), ("Keep-Alive", .keepAlive), ("Proxy-Connection", .proxyConnection),
            ("TE", .te), ("Trailer", .trailer), ("Upgrade", .upgrade), ("Expect", .expect), ("Cookie", .cookie),
            ("X-Forwarded-For", .xForwardedFor), ("X-Forwarded-Proto", .xForwardedProto),
            ("X-Forwarded-Host", .xForwardedHost), ("X-Request-Id", .xRequestId), ("Date", .date),
            ("Server", .server), ("X-Switchyard-Shadow", .xSwitchyardShadow),
            ("Traceparent", .traceparent), ("Tracestate", .tracestate), ("X-Real-IP", .forwardedOther),
            ("X-Forwarded-Port", .forwardedOther), ("X-Forwarded-Prefix", .forwardedOther), ("X-Real-IPs", .other), ("Traceparents", .other), ("X-Forwarded-Fox", .other), ("Hos", .other), ("Hosts", .other), ("T^", .other),
        ]
        for (name, kind) in names {
            for spelling in [name, name.lowercased(), name.uppercased()] {
                let bytes = Array(spelling.utf8)
                let got = bytes.withUnsafeBytes { classifyName($0, 0, bytes.count) }
                XCTAssertEqual(got, kind, spelling)
            }
        }
    }

    func testHeaderValuesAreTrimmed() {
        let r = parseRequest("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t spaced  value \t\r\nX-Empty:\r\nX-Blank:   \r\nX-Utf8: caf\u{e9}\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.value("host"), "a")
        XCTAssertEqual(r.value("x-a"), "spaced  value")
        XCTAssertEqual(r.value("x-empty"), "")
        XCTAssertEqual(r.value("x-blank"), "")
        XCTAssertEqual(r.value("x-utf8"), "caf\u{e9}", "obs-text is allowed in values")
    }

    func testExpectContinue() {
        let r = parseRequest("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertTrue(r.head.expectContinue)
        let http10 = parseRequest("PUT /f HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(http10.status, .complete)
        XCTAssertFalse(http10.head.expectContinue, "ignored for HTTP/1.0 (RFC 9110 10.1.1)")
    }

    func testUpgradeDetection() {
        let ws = parseRequest("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertEqual(ws.status, .complete)
        XCTAssertTrue(ws.head.upgrade)
        let noHeader = parseRequest("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n")
        XCTAssertFalse(noHeader.head.upgrade)
        let noToken = parseRequest("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertFalse(noToken.head.upgrade)
    }

    /// Any protocol offer is an upgrade for the route to allow or refuse, except h2c (alone or
    /// beside another), which never is. The Upgrade field itself is never end-to-end.
    func testUpgradeOffersExceptH2c() {
        let rows: [(String, Bool)] = [
            ("websocket", true), ("WebSocket", true), ("websocket/13", true), ("websocket, WebSocket", true),
            ("TLS/1.2", true), ("my-proto", true), ("h2cx", true),
            ("h2c", false), ("H2C", false), ("h2c/1", false), ("h2c, websocket", false), ("websocket, h2c", false),
        ]
        for (token, upgrade) in rows {
            let r = parseRequest("GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: \(token)\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
            XCTAssertEqual(r.status, .complete, token)
            XCTAssertEqual(r.head.upgrade, upgrade, token)
            let field = r.head.headers.first { $0.kind == .upgrade }
            XCTAssertEqual(field?.hopByHop, true, "the Upgrade field is never forwarded as an end-to-end header: \(token)")
        }
    }

    func testValidHosts() {
        for host in ["example.com", "EXAMPLE.com:8080", "127.0.0.1", "127.0.0.1:65535", "[::1]", "[2001:db8::1]:443",
                     "xn--bcher-kva.example", "a_b.local", "my%20host", ""] {
            let r = parseRequest("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            XCTAssertEqual(r.status, .complete, host)
            XCTAssertEqual(r.head.hostIndex, 0)
        }
    }

    func testHeadOneByteAtATime() {
        let text = "\r\nPOST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-Long: \(String(repeating: "v", count: 100))\r\n\r\n"
        let bytes = Array(text.utf8)
        var parser = RequestParser(limits: HTTPLimits())
        var head = RequestHead()
        for n in 1..<bytes.count {
            let status = bytes[0..<n].withUnsafeBytes { parser.parse($0, into: &head) }
            XCTAssertEqual(status, .incomplete, "prefix of \(n) bytes")
        }
        let status = bytes.withUnsafeBytes { parser.parse($0, into: &head) }
        XCTAssertEqual(status, .complete)
        XCTAssertEqual(Int(head.headLength), bytes.count)
        XCTAssertEqual(head.framing, .contentLength(2))
        XCTAssertEqual(head.headers.count, 3)
    }

    func testHeadInTwoPiecesAtEveryBoundary() {
        let bytes = Array("GET /a HTTP/1.1\r\nHost: a\r\nX-B: c\r\n\r\n".utf8)
        for split in 1..<bytes.count {
            var parser = RequestParser(limits: HTTPLimits())
            var head = RequestHead()
            XCTAssertEqual(bytes[0..<split].withUnsafeBytes { parser.parse($0, into: &head) }, .incomplete)
            XCTAssertEqual(bytes.withUnsafeBytes { parser.parse($0, into: &head) }, .complete, "split at \(split)")
            XCTAssertEqual(head.headers.count, 2)
        }
    }

    func testResetAbandonsAPartialHead() {
        var parser = RequestParser(limits: HTTPLimits())
        var head = RequestHead()
        let partial = Array("GET /a HTTP/1.1\r\nHost: a\r\n".utf8)
        XCTAssertEqual(partial.withUnsafeBytes { parser.parse($0, into: &head) }, .incomplete)
        parser.reset()
        let other = Array("GET /b HTTP/1.1\r\nHost: b\r\n\r\n".utf8)
        XCTAssertEqual(other.withUnsafeBytes { parser.parse($0, into: &head) }, .complete)
        XCTAssertEqual(String(decoding: other[Int(head.targetStart)..<Int(head.targetEnd)], as: UTF8.self), "/b")
    }

    func testHeadersStorageIsReused() {
        var parser = RequestParser(limits: HTTPLimits())
        var head = RequestHead()
        let bytes = Array("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { parser.parse($0, into: &head) }, .complete)
        let capacity = head.headers.capacity
        XCTAssertEqual(bytes.withUnsafeBytes { parser.parse($0, into: &head) }, .complete)
        XCTAssertEqual(head.headers.capacity, capacity)
        XCTAssertEqual(head.headers.count, 4)
    }

    func testLimitsAreInclusive() {
        let limits = HTTPLimits(maxHeadBytes: 64, maxHeaders: 2, maxURIBytes: 10)
        let text = "GET /123456789 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"
        let r = parseRequest(text, limits: limits)
        XCTAssertEqual(r.status, .complete)
        let exact = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 64 - 32) + "\r\n\r\n"
        XCTAssertEqual(exact.utf8.count, 64)
        XCTAssertEqual(parseRequest(exact, limits: limits).status, .complete)
    }

    func testHeaderAccessors() {
        let r = parseRequest("GET / HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: abc\r\n\r\n")
        XCTAssertEqual(r.head.firstIndex(of: .xRequestId), 1)
        XCTAssertNil(r.head.firstIndex(of: .cookie))
        r.bytes.withUnsafeBytes { buffer in
            let field = r.head.headers[1]
            XCTAssertTrue(asciiCaseInsensitiveEquals(field.name(in: buffer), UnsafeRawBufferPointer(StaticString("x-request-id"))))
            XCTAssertEqual(Array(field.value(in: buffer)), Array("abc".utf8))
        }
    }
}

extension UnsafeRawBufferPointer {
    init(_ literal: StaticString) {
        self.init(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    }
}
