// The framing an upstream sees: exactly one canonical Transfer-Encoding or Content-Length line
// whatever list syntax, repetition or leading zeros the client used (RFC 9110 8.6, RFC 9112
// 6.1), and chunk extensions outside RFC 9112 7.1.1 refused before they reach the upstream.
import XCTest

final class FramingHeadersTests: EndToEndTestCase {
    /// An upstream that records each request head with its body bytes (read by the framing the
    /// head declares to this test) and answers 200.
    private func recordingUpstream() throws -> RawServer {
        try startServer { conn, server in
            while let head = conn.readHead() {
                server.record(head)
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            }
        }
    }

    /// Sends `request`, expects 200, returns the framing lines the upstream received.
    private func framingLines(_ request: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let upstream = try recordingUpstream()
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]), file: file, line: line)
        let client = try connect(proxy)
        try client.send(request)
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200, r.bodyText, file: file, line: line)
        let head = try XCTUnwrap(upstream.recordedHeads.first, file: file, line: line)
        return head.components(separatedBy: "\r\n").filter {
            $0.lowercased().hasPrefix("transfer-encoding:") || $0.lowercased().hasPrefix("content-length:")
        }
    }

    func testTransferEncodingIsSentAsOneChunkedLine() throws {
        let body = "2\r\nab\r\n0\r\n\r\n"
        for te in ["Transfer-Encoding: ,chunked", "Transfer-Encoding: chunked,", "Transfer-Encoding: chunked\r\nTransfer-Encoding: ,",
                   "Transfer-Encoding: , chunked ,", "transfer-encoding: CHUNKED"] {
            let lines = try framingLines("POST / HTTP/1.1\r\nHost: a\r\n\(te)\r\n\r\n\(body)")
            XCTAssertEqual(lines, ["Transfer-Encoding: chunked"], te.debugDescription)
        }
    }

    func testContentLengthIsSentAsOneCanonicalLine() throws {
        let cases: [(String, String, [String])] = [
            ("Content-Length: 2, 2", "ab", ["Content-Length: 2"]),
            ("Content-Length: 2\r\nContent-Length: 2", "ab", ["Content-Length: 2"]),
            ("Content-Length: 2,2\r\ncontent-length: 2", "ab", ["Content-Length: 2"]),
            ("Content-Length: 010", "0123456789", ["Content-Length: 10"]),
            ("Content-Length: 00", "", ["Content-Length: 0"]),
        ]
        for (cl, body, expected) in cases {
            XCTAssertEqual(try framingLines("POST / HTTP/1.1\r\nHost: a\r\n\(cl)\r\n\r\n\(body)"), expected, cl.debugDescription)
        }
        XCTAssertEqual(try framingLines("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), [], "no framing header is added to a GET")
    }

    /// Responses are made as canonical as requests: whatever list syntax, repetition or
    /// leading zeros the upstream used, the client gets one Content-Length or Transfer-Encoding
    /// line; a 204 gets none, a HEAD answer and a 304 keep the length they declared.
    func testResponseFramingReachesTheClientAsOneCanonicalLine() throws {
        let answers: [String: String] = [
            "/zero": "HTTP/1.1 200 OK\r\nContent-Length: 010\r\n\r\n0123456789",
            "/twice": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
            "/list": "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
            "/comma": "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "/split": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: , chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "/nocontent": "HTTP/1.1 204 No Content\r\nContent-Length: 25\r\n\r\n",
            "/notmodified": "HTTP/1.1 304 Not Modified\r\nContent-Length: 0025\r\n\r\n",
            "/head": "HTTP/1.1 200 OK\r\nContent-Length: 025\r\nContent-Length: 25\r\n\r\n",
        ]
        let upstream = try startServer { conn, _ in
            while let head = conn.readHead() {
                let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                _ = conn.send(answers[target] ?? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let expected: [(String, String, [String], String)] = [
            ("GET", "/zero", ["Content-Length: 10"], "0123456789"),
            ("GET", "/twice", ["Content-Length: 2"], "ok"),
            ("GET", "/list", ["Content-Length: 2"], "ok"),
            ("GET", "/comma", ["Transfer-Encoding: chunked"], "ok"),
            ("GET", "/split", ["Transfer-Encoding: gzip, chunked"], "ok"),
            ("GET", "/nocontent", [], ""),
            ("GET", "/notmodified", ["Content-Length: 25"], ""),
            ("HEAD", "/head", ["Content-Length: 25"], ""),
        ]
        let client = try connect(proxy)
        for (method, path, lines, body) in expected {
            try client.send("\(method) \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
            let r = try method == "HEAD" || path == "/notmodified" || path == "/nocontent" ? client.readHead() : client.readResponse()
            let framing = r.headers.filter { ["content-length", "transfer-encoding"].contains($0.name.lowercased()) }
                .map { "\($0.name): \($0.value)" }
            XCTAssertEqual(framing, lines, path)
            if method == "GET" && !body.isEmpty { XCTAssertEqual(r.bodyText, body, path) }
        }
    }

    func testMalformedChunkExtensionsAreRefused() throws {
        let bodies: [[UInt8]] = [
            Array("2;\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a b\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;".utf8) + [0xFF] + Array("\r\nab\r\n0\r\n\r\n".utf8),
            Array("5;a=\"def; ghi\r\nhello\r\n0\r\n\r\n".utf8),
        ]
        for body in bodies {
            let upstream = try startServer { conn, server in
                while let head = conn.readHead() {
                    server.record(head)
                    conn.waitForPeerClose(timeout: 3)
                }
            }
            let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
            let client = try connect(proxy)
            try client.send(Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + body)
            let text = String(decoding: body, as: UTF8.self).debugDescription
            let r = try client.readResponse()
            XCTAssertEqual(r.status, 400, text)
            XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0), text)
        }
    }
}
