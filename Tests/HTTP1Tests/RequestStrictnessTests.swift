// Requests Switchyard must refuse, one test per rule, with the status and whether the connection
// has to be closed afterwards.

import XCTest
@testable import HTTP1

private let get = "GET / HTTP/1.1\r\nHost: a\r\n"

final class RequestStrictnessTests: XCTestCase {
    func testTransferEncodingWithContentLength() {
        assertRequestsRejected([
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, mustClose: true),
        ])
    }

    func testInvalidContentLength() {
        let values = ["+5", "-5", "5 5", "", " ", "0x10", "a", "5a", "5,", ",5", "5,,5", "5;", "1.0", "\u{663}",
                      "9223372036854775808", "99999999999999999999999"]
        assertRequestsRejected(values.map {
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \($0)\r\n\r\n", 400, mustClose: true)
        })
    }

    func testConflictingContentLengths() {
        assertRequestsRejected([
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 6\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00\r\nContent-Length: 1\r\n\r\n", 400, mustClose: true),
        ])
    }

    func testChunkedMustBeLastAndOnce() {
        let codings = ["gzip", "chunked, gzip", "identity", "", "chunked, chunked", "chunked;q=1", "\"chunked\""]
        assertRequestsRejected(codings.map {
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \($0)\r\n\r\n", 400, mustClose: true)
        } + [
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, mustClose: true),
        ])
    }

    func testTransferEncodingInHTTP10() {
        assertRequestsRejected([
            Rejection("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, mustClose: true),
            Rejection("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, mustClose: true),
        ])
    }

    func testUnsupportedTransferCoding() {
        let codings = ["gzip, chunked", "deflate, chunked", "compress,chunked", "identity, chunked", "x-custom, chunked"]
        assertRequestsRejected(codings.map {
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \($0)\r\n\r\n", 501, mustClose: true)
        } + [
            Rejection("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501, mustClose: true),
        ])
    }

    // The rule asks for 400; the connection is closed too, because the refused line could be one
    // the upstream would have read as Content-Length or Transfer-Encoding.
    func testInvalidHeaderNames() {
        let lines = ["Content-Length : 5", "Host\t: a", ": empty", "X Y: z", "X@Y: z", "X(Y): z", "NoColon",
                     "\u{e9}t\u{e9}: x", "X\"Y: z"]
        assertRequestsRejected(lines.map { Rejection(get + $0 + "\r\n\r\n", 400, mustClose: true) })
    }

    func testControlCharactersInValuesAndFolding() {
        let heads = [
            get + "X-A: a\rb\r\n\r\n",
            get + "X-A: a\r\r\n\r\n",
            get + "X-A: a\u{0}b\r\n\r\n",
            get + "X-A: a\nb\r\n\r\n",
            get + "X-A: a\nContent-Length : 5\r\n\r\n",
            get + "X-A: a\u{1}b\r\n\r\n",
            get + "X-A: a\u{7f}\r\n\r\n",
            get + "X-A: a\r\n b\r\n\r\n",
            get + "X-A: a\r\n\tb\r\n\r\n",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            "GET / HTTP/1.1\rHost: a\r\n\r\n",
            get + "X-A: a\r\n\r\r\n",
            "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
        ]
        assertRequestsRejected(heads.map { Rejection($0, 400, mustClose: true) })
    }

    func testHostMissingRepeatedOrInvalid() {
        let heads = [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: :80\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:80:90\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: []\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a b\r\n\r\n",
        ]
        assertRequestsRejected(heads.map { Rejection($0, 400, mustClose: false) })
    }

    func testRecoverableErrorsKeepFramingAndLength() {
        let text = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n"
        let r = parseRequest(text)
        XCTAssertEqual(r.error?.status, 400)
        XCTAssertEqual(r.error?.mustClose, false)
        XCTAssertEqual(r.head.framing, .contentLength(3))
        XCTAssertEqual(Int(r.head.headLength), "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n".utf8.count)
    }

    func testMalformedRequestLine() {
        let lines = [
            "GET  / HTTP/1.1", "GET /  HTTP/1.1", " GET / HTTP/1.1", "GET / HTTP/1.1 ", "GET /", "GET / ",
            "GET", "/ HTTP/1.1", "GET / HTTP/1.1 extra", "G(T / HTTP/1.1", "G\u{e9}T / HTTP/1.1",
            "GET /a\tb HTTP/1.1", "GET /a\u{1}b HTTP/1.1", "GET /a\u{7f} HTTP/1.1", "GET /caf\u{e9} HTTP/1.1",
            "GET\t/ HTTP/1.1", "GET /\u{0} HTTP/1.1",
        ]
        assertRequestsRejected(lines.map { Rejection($0 + "\r\nHost: a\r\n\r\n", 400, mustClose: true) })
    }

    func testTargetFormMustSuitTheMethod() {
        let lines = [
            "GET * HTTP/1.1", "OPTIONS *x HTTP/1.1", "GET example.com:80 HTTP/1.1", "GET index.html HTTP/1.1",
            "GET ftp://example.com/ HTTP/1.1", "GET http:/example.com/ HTTP/1.1", "GET http:// HTTP/1.1",
            "GET http://user@example.com/ HTTP/1.1", "GET http://exa%zzmple/ HTTP/1.1",
            "CONNECT / HTTP/1.1", "CONNECT example.com HTTP/1.1", "CONNECT http://example.com:443/ HTTP/1.1",
            "CONNECT * HTTP/1.1",
        ]
        assertRequestsRejected(lines.map { Rejection($0 + "\r\nHost: a\r\n\r\n", 400, mustClose: false) })
    }

    func testUnsupportedVersion() {
        let versions = ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/1.9"]
        assertRequestsRejected(versions.map { Rejection("GET / \($0)\r\nHost: a\r\n\r\n", 505, mustClose: true) })
    }

    func testGarbageVersion() {
        let versions = ["HTTX/1.1", "http/1.1", "HTTP/1.10", "HTTP/11", "HTTP/1.", "HTTP/1.1.1", "HTTP/a.b", "HTTP /1.1",
                        "HTTP/1,1", "HTTP/01.1"]
        assertRequestsRejected(versions.map { Rejection("GET / \($0)\r\nHost: a\r\n\r\n", 400, mustClose: true) })
    }

    func testURITooLong() {
        let limits = HTTPLimits(maxHeadBytes: 16384, maxHeaders: 100, maxURIBytes: 100)
        let long = "/" + String(repeating: "a", count: 100)
        assertRequestsRejected([Rejection("GET \(long) HTTP/1.1\r\nHost: a\r\n\r\n", 414, mustClose: true)], limits: limits)

        // Refused before the request line, let alone the head, is complete.
        let partial = parseRequest("GET \(long)", limits: limits)
        XCTAssertEqual(partial.error?.status, 414)
        let justUnder = parseRequest("GET /" + String(repeating: "a", count: 99), limits: limits)
        XCTAssertEqual(justUnder.status, .incomplete)

        let streamed = Array("GET \(long)".utf8)
        var parser = RequestParser(limits: limits)
        var head = RequestHead()
        var failedAt = -1
        for n in 1...streamed.count {
            if case .failed(let e) = streamed[0..<n].withUnsafeBytes({ parser.parse($0, into: &head) }) {
                XCTAssertEqual(e.status, 414)
                failedAt = n
                break
            }
        }
        XCTAssertEqual(failedAt, streamed.count)
    }

    func testHeadTooLarge() {
        let limits = HTTPLimits(maxHeadBytes: 200, maxHeaders: 100, maxURIBytes: 100)
        let big = get + "X-Big: " + String(repeating: "b", count: 300) + "\r\n\r\n"
        assertRequestsRejected([Rejection(big, 431, mustClose: true)], limits: limits)

        // Incomplete but already over the limit.
        let partial = parseRequest(get + "X-Big: " + String(repeating: "b", count: 300), limits: limits)
        XCTAssertEqual(partial.error?.status, 431)
        let endsJustAfter = get + "X: " + String(repeating: "b", count: 200 - 31) + "\r\n\r\n"
        XCTAssertEqual(endsJustAfter.utf8.count, 201)
        XCTAssertEqual(parseRequest(endsJustAfter, limits: limits).error?.status, 431)
        XCTAssertEqual(parseRequest(String(repeating: "\r\n", count: 101), limits: limits).error?.status, 431)
    }

    func testTooManyHeaders() {
        let limits = HTTPLimits(maxHeadBytes: 16384, maxHeaders: 3, maxURIBytes: 100)
        let ok = get + "A: 1\r\nB: 2\r\n\r\n"
        XCTAssertEqual(parseRequest(ok, limits: limits).status, .complete)
        assertRequestsRejected([Rejection(get + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, mustClose: true)], limits: limits)
    }

    func testUnsupportedExpectation() {
        let heads = [
            get + "Expect: something\r\n\r\n",
            get + "Expect: 100-continue, other\r\n\r\n",
            get + "Expect: 100-continuex\r\n\r\n",
        ]
        assertRequestsRejected(heads.map { Rejection($0, 417, mustClose: false) })
    }

    func testInvalidConnectionList() {
        assertRequestsRejected([
            Rejection(get + "Connection: close; x\r\n\r\n", 400, mustClose: true),
            Rejection(get + "Connection: \"close\"\r\n\r\n", 400, mustClose: true),
        ])
    }

    func testFirstFailureIsReportedAndParserStartsOver() {
        var parser = RequestParser(limits: HTTPLimits())
        var head = RequestHead()
        let bad = Array("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n".utf8)
        XCTAssertEqual(bad.withUnsafeBytes { parser.parse($0, into: &head) },
                       .failed(HTTPParseError(status: 400, reason: "whitespace before colon", mustClose: true)))
        let good = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        XCTAssertEqual(good.withUnsafeBytes { parser.parse($0, into: &head) }, .complete)
    }
}
