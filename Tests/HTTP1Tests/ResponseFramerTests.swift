// The response framer: where each response ends however its bytes arrive (at once, a byte at a
// time, split at every offset), pipelined responses, EOF as completion or truncation, and the
// framing errors that must close the upstream connection.

import XCTest
@testable import HTTP1

/// What a caller saw while framing one response.
private struct Framed: Equatable {
    var interims: [Int] = []
    var status = 0
    /// Bytes reported as body (raw: chunk sizes and trailers included) or as tunnel bytes.
    var body: [UInt8] = []
    var complete = false
    /// Bytes after the end of the message, never given to the body.
    var rest: [UInt8] = []
    var error: HTTPParseError?
}

/// Drives `framer` the way a connection does: bytes arrive in `pieces`, the unframed ones are kept
/// and given again from their first byte.
private func frame(_ pieces: [[UInt8]], framer: inout ResponseFramer,
                   file: StaticString = #filePath, line: UInt = #line) -> Framed {
    var out = Framed()
    var pending: [UInt8] = []
    for (p, piece) in pieces.enumerated() {
        pending += piece
        feeding: while true {
            let r = pending.withUnsafeBytes { framer.feed($0) }
            switch r {
            case .needMore:
                break feeding
            case .interim(let n):
                XCTAssertLessThanOrEqual(n, pending.count, file: file, line: line)
                out.interims.append(framer.head.status)
                pending.removeFirst(n)
            case .head(let n):
                XCTAssertLessThanOrEqual(n, pending.count, file: file, line: line)
                out.status = framer.head.status
                pending.removeFirst(n)
                if framer.isComplete {
                    out.complete = true
                    out.rest = pending + pieces[(p + 1)...].flatMap { $0 }
                    return out
                }
            case .body(let n, let complete):
                XCTAssertLessThanOrEqual(n, pending.count, file: file, line: line)
                out.body += pending[..<n]
                pending.removeFirst(n)
                if complete {
                    XCTAssertTrue(framer.isComplete, file: file, line: line)
                    out.complete = true
                    out.rest = pending + pieces[(p + 1)...].flatMap { $0 }
                    return out
                }
                guard n > 0 else {
                    XCTFail("no progress", file: file, line: line)
                    return out
                }
                if pending.isEmpty { break feeding }
            case .failed(let e):
                out.error = e
                return out
            }
        }
    }
    out.rest = pending
    return out
}

private func frame(_ text: String, method: HTTP1.Method = .get, upgrade: Bool = false,
                   file: StaticString = #filePath, line: UInt = #line) -> (Framed, ResponseFramer) {
    var framer = ResponseFramer(limits: HTTPLimits())
    framer.reset(requestMethod: method, upgradeRequested: upgrade)
    let out = frame([Array(text.utf8)], framer: &framer, file: file, line: line)
    return (out, framer)
}

/// The three ways a response's bytes can arrive: at once, a byte at a time, and split in two at
/// every offset.
private func splits(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var all: [[[UInt8]]] = [[bytes], bytes.map { [$0] }]
    for i in 1..<max(bytes.count, 1) {
        all.append([Array(bytes[..<i]), Array(bytes[i...])])
    }
    return all
}

private struct Row {
    let input: String
    let method: HTTP1.Method
    let upgrade: Bool
    let interims: [Int]
    let status: Int
    let body: String
    let complete: Bool
    let mode: ResponseFramer.Mode
    let line: UInt

    init(_ input: String, _ method: HTTP1.Method = .get, upgrade: Bool = false, interims: [Int] = [],
         status: Int, body: String = "", complete: Bool = true, mode: ResponseFramer.Mode = .complete,
         line: UInt = #line) {
        self.input = input
        self.method = method
        self.upgrade = upgrade
        self.interims = interims
        self.status = status
        self.body = body
        self.complete = complete
        self.mode = mode
        self.line = line
    }
}

final class ResponseFramerTests: XCTestCase {
    private let next = "HTTP/1.1 204 No Content\r\n\r\n"

    private let rows: [Row] = [
        Row("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: "hello"),
        Row("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200),
        Row("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", status: 200, body: "abc"),
        Row("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            status: 200, body: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        Row("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 200, body: "0\r\n\r\n"),
        // Trailers end with their own empty line, not at the first "0\r\n\r\n"-looking suffix.
        Row("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nExpires: never\r\nX-Sum: 0\r\n\r\n",
            status: 200, body: "4\r\nwiki\r\n0\r\nExpires: never\r\nX-Sum: 0\r\n\r\n"),
        Row("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
            status: 200, body: "3;x=y\r\nabc\r\n0\r\n\r\n"),
        Row("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .head, status: 200),
        Row("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .head, status: 200),
        Row("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status: 204),
        Row("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", status: 304),
        Row("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", .post,
            interims: [100], status: 201, body: "ok"),
        Row("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", interims: [103, 100], status: 200, body: "x"),
        // Close-delimited and tunnels take every byte and never complete on their own.
        Row("HTTP/1.1 200 OK\r\n\r\nuntil the end", status: 200, body: "until the end", complete: false,
            mode: .untilClose),
        Row("HTTP/1.0 200 OK\r\n\r\n", status: 200, complete: false, mode: .untilClose),
        Row("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{05}frame",
            upgrade: true, status: 101, body: "\u{81}\u{05}frame", complete: false, mode: .tunnel),
        Row("HTTP/1.1 200 Connection Established\r\n\r\ntls bytes", .connect, status: 200, body: "tls bytes",
            complete: false, mode: .tunnel),
    ]

    func testEveryWayTheBytesArrive() {
        for row in rows {
            // Complete messages are followed by a pipelined one that must be left alone.
            let bytes = Array((row.input + (row.complete ? next : "")).utf8)
            for pieces in splits(bytes) {
                var framer = ResponseFramer(limits: HTTPLimits())
                framer.reset(requestMethod: row.method, upgradeRequested: row.upgrade)
                let out = frame(pieces, framer: &framer, line: row.line)
                let described = "\(row.input.debugDescription) in \(pieces.count) pieces"
                XCTAssertNil(out.error, described, line: row.line)
                XCTAssertEqual(out.interims, row.interims, described, line: row.line)
                XCTAssertEqual(out.status, row.status, described, line: row.line)
                XCTAssertEqual(out.body, Array(row.body.utf8), described, line: row.line)
                XCTAssertEqual(out.complete, row.complete, described, line: row.line)
                XCTAssertEqual(framer.mode, row.mode, described, line: row.line)
                guard row.complete else { continue }
                XCTAssertEqual(out.rest, Array(next.utf8), described, line: row.line)
                // A complete message stays complete, and EOF after it truncates nothing.
                XCTAssertEqual([UInt8](out.rest).withUnsafeBytes { framer.feed($0) }, .body(count: 0, complete: true),
                               described, line: row.line)
                XCTAssertTrue(framer.endOfStream(), described, line: row.line)
            }
        }
    }

    func testPipelinedResponses() {
        let first = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX: y\r\n\r\n"
        let second = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz"
        let third = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        var framer = ResponseFramer(limits: HTTPLimits())
        var rest = Array((first + second + third).utf8)
        var statuses: [Int] = []
        var bodies: [String] = []
        for method: HTTP1.Method in [.get, .get, .get] {
            framer.reset(requestMethod: method)
            let out = frame([rest], framer: &framer)
            XCTAssertTrue(out.complete)
            statuses.append(out.status)
            bodies.append(String(decoding: out.body, as: UTF8.self))
            rest = out.rest
        }
        XCTAssertEqual(statuses, [200, 200, 404])
        XCTAssertEqual(bodies, ["2\r\nab\r\n0\r\nX: y\r\n\r\n", "xyz", ""])
        XCTAssertTrue(rest.isEmpty)
    }

    func testHeadOffsetsAreIntoTheGivenBytes() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 418 Teapot\r\nServer: pot\r\nContent-Length: 0\r\n\r\n"
        let bytes = Array(text.utf8)
        var framer = ResponseFramer(limits: HTTPLimits())
        framer.reset(requestMethod: .post)
        let interim = bytes.withUnsafeBytes { framer.feed($0) }
        XCTAssertEqual(interim, .interim(headLength: 25))
        let rest = Array(bytes[25...])
        XCTAssertEqual(rest.withUnsafeBytes { framer.feed($0) }, .head(headLength: rest.count))
        let reason = rest[Int(framer.head.reasonStart)..<Int(framer.head.reasonEnd)]
        XCTAssertEqual(String(decoding: reason, as: UTF8.self), "Teapot")
        XCTAssertEqual(framer.head.headers.map(\.kind), [.server, .contentLength])
        XCTAssertTrue(framer.head.keepAlive)
        XCTAssertTrue(framer.isComplete)
    }

    func testEndOfStream() {
        // (bytes received before the upstream closed, whether EOF ends the message)
        let cases: [(String, HTTP1.Method, Bool, UInt)] = [
            ("HTTP/1.1 200 OK\r\n\r\npartial or not", .get, true, #line),
            ("HTTP/1.0 200 OK\r\n\r\n", .get, true, #line),
            ("HTTP/1.1 200 Connection Established\r\n\r\n", .connect, true, #line),
            // Three bytes promised, two sent.
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", .get, false, #line),
            ("", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Len", .get, false, #line),
            ("HTTP/1.1 100 Continue\r\n\r\n", .post, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", .get, false, #line),
        ]
        for (text, method, completes, line) in cases {
            let out: Framed
            var framer: ResponseFramer
            (out, framer) = frame(text, method: method, line: line)
            XCTAssertNil(out.error, text.debugDescription, line: line)
            let wasTunnel = framer.isTunnel
            XCTAssertEqual(framer.endOfStream(), completes, text.debugDescription, line: line)
            if completes && !wasTunnel { XCTAssertTrue(framer.isComplete, text.debugDescription, line: line) }
            if !completes { XCTAssertFalse(framer.isComplete, text.debugDescription, line: line) }
        }
    }

    func testSplicedBodyAccounting() {
        var (out, framer) = frame("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        XCTAssertEqual(out.body, Array("abc".utf8))
        XCTAssertEqual(framer.mode, .contentLength)
        XCTAssertEqual(framer.remainingLength, 7)
        XCTAssertFalse(framer.bodyBytesMovedExternally(4))
        XCTAssertEqual(framer.remainingLength, 3)
        XCTAssertFalse(framer.endOfStream())
        XCTAssertTrue(framer.bodyBytesMovedExternally(3))
        XCTAssertTrue(framer.isComplete)
        XCTAssertNil(framer.remainingLength)
        XCTAssertTrue(framer.endOfStream())

        (out, framer) = frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertNil(framer.remainingLength)
        (out, framer) = frame("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", method: .head)
        XCTAssertNil(framer.remainingLength)
    }

    /// Walking a chunked body as payload and framing (for an HTTP/1.0 client) completes the
    /// message as `feed` would; a bad chunk fails it with a 502; no other body is walked so.
    func testPayloadSegments() {
        var (_, framer) = frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        let body = Array("2;x=y\r\nab\r\n0\r\nT: v\r\n\r\n".utf8)
        body.withUnsafeBytes { b in
            XCTAssertEqual(framer.nextPayloadSegment(b, from: 0), .skip(end: 7))
            XCTAssertEqual(framer.nextPayloadSegment(b, from: 7), .copy(end: 9))
            XCTAssertEqual(framer.nextPayloadSegment(b, from: 9), .skip(end: body.count))
            XCTAssertEqual(framer.nextPayloadSegment(b, from: body.count), .done(end: body.count))
        }
        XCTAssertTrue(framer.isComplete)
        XCTAssertTrue(framer.endOfStream())

        (_, framer) = frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        let bad = Array("2\r\nabX".utf8)
        let failed = bad.withUnsafeBytes { b in
            _ = framer.nextPayloadSegment(b, from: 0)
            _ = framer.nextPayloadSegment(b, from: 3)
            return framer.nextPayloadSegment(b, from: 5)
        }
        guard case .failed(let e) = failed else { return XCTFail("\(failed)") }
        XCTAssertEqual(e.status, 502)
        XCTAssertEqual(framer.mode, .failed)
        XCTAssertEqual(Array("ab".utf8).withUnsafeBytes { framer.feed($0) }, .failed(e), "the failure stays")

        (_, framer) = frame("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        guard case .failed = Array("ab".utf8).withUnsafeBytes({ framer.nextPayloadSegment($0, from: 0) }) else {
            return XCTFail("a Content-Length body has no chunks to walk")
        }
    }

    func testLargeContentLengthIsCountedNotBuffered() {
        var (_, framer) = frame("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n")
        XCTAssertEqual(framer.remainingLength, Int64.max)
        let block = [UInt8](repeating: 0x61, count: 65536)
        XCTAssertEqual(block.withUnsafeBytes { framer.feed($0) }, .body(count: 65536, complete: false))
        XCTAssertEqual(framer.remainingLength, Int64.max - 65536)
    }

    func testMalformedResponsesFailWith502AndStayFailed() {
        let cases: [(String, HTTP1.Method, Bool, UInt)] = [
            ("HTTP/1.1 2000 OK\r\n\r\n", .get, false, #line),
            ("HTTP/2.0 200 OK\r\n\r\n", .get, false, #line),
            ("HTTX/1.1 200 OK\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\r\n\r\n", .get, false, #line),
            // A 101 needs both an Upgrade header and a request that asked for one.
            ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", .get, true, #line),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", .get, false, #line),
            // Chunk sizes and the lines around chunk data.
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n bad trailer\r\n\r\n", .get, false, #line),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r", .get, false, #line),
        ]
        for (text, method, upgrade, line) in cases {
            for pieces in [[Array(text.utf8)], Array(text.utf8).map { [$0] }] {
                var framer = ResponseFramer(limits: HTTPLimits())
                framer.reset(requestMethod: method, upgradeRequested: upgrade)
                let out = frame(pieces, framer: &framer, line: line)
                guard let error = out.error else {
                    XCTFail("accepted: \(text.debugDescription)", line: line)
                    continue
                }
                XCTAssertEqual(error.status, 502, text.debugDescription, line: line)
                XCTAssertTrue(error.mustClose, text.debugDescription, line: line)
                XCTAssertEqual(framer.mode, .failed, line: line)
                XCTAssertEqual([UInt8]("more".utf8).withUnsafeBytes { framer.feed($0) }, .failed(error), line: line)
                XCTAssertFalse(framer.endOfStream(), line: line)
            }
        }
    }

    func testHeadTooLarge() {
        var framer = ResponseFramer(limits: HTTPLimits(maxHeadBytes: 64))
        framer.reset(requestMethod: .get)
        let text = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 100) + "\r\n\r\n"
        let out = frame([Array(text.utf8)], framer: &framer)
        XCTAssertEqual(out.error?.status, 502)
    }

    func testResetStartsOverAfterFailureAndMidBody() {
        var framer = ResponseFramer(limits: HTTPLimits())
        framer.reset(requestMethod: .get)
        _ = frame([Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe".utf8)], framer: &framer)
        XCTAssertEqual(framer.mode, .chunked)
        framer.reset(requestMethod: .get)
        XCTAssertEqual(framer.mode, .head)
        var out = frame([Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8)], framer: &framer)
        XCTAssertTrue(out.complete)
        XCTAssertEqual(framer.chunkedPayloadBytes, 0)

        _ = frame([Array("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".utf8)], framer: &framer)
        framer.reset(requestMethod: .get)
        out = frame([Array("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!".utf8)], framer: &framer)
        XCTAssertTrue(out.complete)
        XCTAssertEqual(out.body, [0x21])
    }

    func testHeaderStorageIsReusedAcrossResponses() {
        var framer = ResponseFramer(limits: HTTPLimits())
        func storage(_ framer: ResponseFramer) -> UnsafeRawPointer? {
            framer.head.headers.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        }
        framer.reset(requestMethod: .get)
        _ = frame([Array("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n".utf8)], framer: &framer)
        let first = storage(framer)
        XCTAssertNotNil(first)
        for text in ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 1\r\n\r\n!",
                     "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"] {
            framer.reset(requestMethod: .get)
            XCTAssertTrue(frame([Array(text.utf8)], framer: &framer).complete)
            XCTAssertEqual(storage(framer), first, text.debugDescription)
        }
    }

    func testEmptyInputAsksForMore() {
        for text in ["", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"] {
            var (_, framer) = frame(text)
            XCTAssertEqual([UInt8]().withUnsafeBytes { framer.feed($0) }, .needMore, text.debugDescription)
        }
    }
}

/// Which response failures are over a limit (the answer's fault, never the endpoint's health)
/// and which break a rule.
final class ResponseLimitKindTests: XCTestCase {
    private func failure(_ text: String, limits: HTTPLimits) -> HTTPParseError? {
        var framer = ResponseFramer(limits: limits)
        framer.reset(requestMethod: .get)
        let bytes = Array(text.utf8)
        let r = bytes.withUnsafeBytes { framer.feed($0) }
        if case .failed(let e) = r { return e }
        return nil
    }

    func testOverLimitIsTold() {
        let small = HTTPLimits(maxHeadBytes: 64, maxHeaders: 2)
        let big = "HTTP/1.1 200 OK\r\nX-A: " + String(repeating: "a", count: 100) + "\r\n\r\n"
        XCTAssertEqual(failure(big, limits: small)?.overLimit, true, "head over maxHeadBytes")
        XCTAssertEqual(failure("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: small)?.overLimit, true, "over maxHeaders")
        XCTAssertEqual(failure("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", limits: HTTPLimits())?.overLimit, false, "a broken rule")
        XCTAssertEqual(failure("SSH-2.0-OpenSSH\r\n\r\n", limits: HTTPLimits())?.overLimit, false)
    }
}
