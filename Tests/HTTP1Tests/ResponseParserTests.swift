// Upstream responses: framing decided with the request method and status, and every malformed
// head answered with 502 and a closed upstream connection.

import XCTest
@testable import HTTP1

final class ResponseParserTests: XCTestCase {
    func testSimpleResponse() {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: up\r\nDate: today\r\n\r\nhello"
        let r = parseResponse(text)
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.version, .http11)
        XCTAssertEqual(r.head.status, 200)
        XCTAssertEqual(r.text(r.head.reasonStart, r.head.reasonEnd), "OK")
        XCTAssertEqual(r.head.framing, .contentLength(5))
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertFalse(r.head.upgrade)
        XCTAssertEqual(Int(r.head.headLength), text.utf8.count - 5)
        XCTAssertEqual(r.head.headers.map(\.kind), [.contentLength, .server, .date])
        XCTAssertEqual(r.head.firstIndex(of: .date), 2)
    }

    func testReasonPhraseVariants() {
        let cases = [("HTTP/1.1 404 Not Found\r\n\r\n", "Not Found"), ("HTTP/1.1 404 \r\n\r\n", ""),
                     ("HTTP/1.1 404\r\n\r\n", ""), ("HTTP/1.1 599 Custom  spaced\tphrase\r\n\r\n", "Custom  spaced\tphrase"),
                     ("HTTP/1.0 200 OK\nContent-Length: 0\n\n", "OK")]
        for (text, reason) in cases {
            let r = parseResponse(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.text(r.head.reasonStart, r.head.reasonEnd), reason, text)
        }
    }

    func testNoBodyStatusesAndHead() {
        let cases: [(String, HTTP1.Method)] = [
            ("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", .get),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", .get),
            ("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", .get),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .head),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .head),
            ("HTTP/1.1 200 OK\r\n\r\n", .head),
            ("HTTP/1.1 100 Continue\r\n\r\n", .post),
            ("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", .get),
        ]
        for (text, method) in cases {
            let r = parseResponse(text, method: method)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.head.framing, BodyFraming.none, text)
            XCTAssertTrue(r.head.keepAlive, text)
            XCTAssertFalse(r.head.upgrade, text)
        }
    }

    func testFraming() {
        let cases: [(String, BodyFraming, Bool)] = [
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .chunked, true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .chunked, true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .none, true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", .contentLength(7), true),
            ("HTTP/1.1 200 OK\r\n\r\n", .untilClose, false),
            ("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", .untilClose, false),
            ("HTTP/1.0 200 OK\r\n\r\n", .untilClose, false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", .contentLength(3), false),
            ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", .contentLength(3), true),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", .contentLength(3), false),
            ("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\n", .contentLength(3), true),
        ]
        for (text, framing, keepAlive) in cases {
            let r = parseResponse(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.head.framing, framing, text)
            XCTAssertEqual(r.head.keepAlive, keepAlive, text)
        }
    }

    func testSwitchingProtocols() {
        let r = parseResponse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.status, 101)
        XCTAssertTrue(r.head.upgrade)
        XCTAssertEqual(r.head.framing, BodyFraming.none)
        XCTAssertEqual(r.head.headers.map(\.hopByHop), [true, true])
    }

    func testConnectTunnel() {
        let r = parseResponse("HTTP/1.1 200 Connection Established\r\n\r\n", method: .connect)
        XCTAssertEqual(r.status, .complete)
        XCTAssertTrue(r.head.upgrade)
        XCTAssertEqual(r.head.framing, BodyFraming.none)
        let refused = parseResponse("HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", method: .connect)
        XCTAssertFalse(refused.head.upgrade)
    }

    func testIncrementalResponse() {
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        var parser = ResponseParser(limits: HTTPLimits())
        var head = ResponseHead()
        let headLength = bytes.count - 2
        for n in 1..<headLength {
            XCTAssertEqual(bytes[0..<n].withUnsafeBytes { parser.parse($0, requestMethod: .get, into: &head) }, .incomplete)
        }
        XCTAssertEqual(bytes.withUnsafeBytes { parser.parse($0, requestMethod: .get, into: &head) }, .complete)
        XCTAssertEqual(Int(head.headLength), headLength)
    }

    func testConnectionNamesHopByHopFields() {
        let r = parseResponse("HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(r.head.headers.map(\.hopByHop), [true, true, false])
    }

    func testFramingErrors() {
        assertResponsesRejected([
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n",
        ])
        assertResponsesRejected(["HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], method: .head)
    }

    func testMalformedStatusLine() {
        assertResponsesRejected([
            "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1\r\n\r\n", "HTTP/1.1 \r\n\r\n", "HTTP/2.0 200 OK\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n", "http/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 O\u{1}K\r\n\r\n", "HTTP/1.1 200 OK\r\r\n\r\n",
            "\r\nHTTP/1.1 200 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
        ])
    }

    func testBadResponseFields() {
        assertResponsesRejected([
            "HTTP/1.1 200 OK\r\nX : y\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A: a\u{0}\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: y\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: a\r\n\r\r\n",
        ])
    }

    func testResponseLimits() {
        var parser = ResponseParser(limits: HTTPLimits(maxHeadBytes: 100, maxHeaders: 2, maxURIBytes: 10))
        var head = ResponseHead()
        let big = Array(("HTTP/1.1 200 OK\r\nX: " + String(repeating: "v", count: 200)).utf8)
        XCTAssertEqual(big.withUnsafeBytes { parser.parse($0, requestMethod: .get, into: &head) },
                       .failed(HTTPParseError(status: 502, reason: "response head too large", mustClose: true)))
        let many = Array("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".utf8)
        guard case .failed(let e) = many.withUnsafeBytes({ parser.parse($0, requestMethod: .get, into: &head) }) else {
            return XCTFail("too many fields accepted")
        }
        XCTAssertEqual(e.status, 502)
    }
}
