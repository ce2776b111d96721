// Chunked bodies: where they end, whether fed at once or a byte at a time, and the framing errors
// that must stop the connection.

import XCTest
@testable import HTTP1

private func feedAll(_ text: String, decoder: inout ChunkedDecoder) -> ChunkedResult {
    Array(text.utf8).withUnsafeBytes { decoder.consume($0) }
}

/// Feeds one byte at a time; returns the result of the call that finished or failed, and the total
/// bytes reported consumed.
private func feedBytewise(_ text: String, decoder: inout ChunkedDecoder) -> (ChunkedResult, Int) {
    let bytes = Array(text.utf8)
    var consumed = 0
    for i in bytes.indices {
        let result = bytes[i...i].withUnsafeBytes { decoder.consume($0) }
        switch result {
        case .needMore(let n):
            XCTAssertEqual(n, 1)
            consumed += n
        case .done(let n):
            return (.done(consumed: consumed + n), consumed + n)
        case .failed:
            return (result, consumed)
        }
    }
    return (.needMore(consumed: consumed), consumed)
}

final class ChunkedDecoderTests: XCTestCase {
    private let validBodies: [(body: String, payload: Int64)] = [
        ("0\r\n\r\n", 0),
        ("5\r\nhello\r\n0\r\n\r\n", 5),
        ("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11),
        ("A\r\n0123456789\r\n0\r\n\r\n", 10),
        ("a;name=value\r\n0123456789\r\n0;last\r\n\r\n", 10),
        ("3 ; ext = \"quoted; value\"\r\nabc\r\n0\r\n\r\n", 3),
        ("00003\r\nabc\r\n000\r\n\r\n", 3),
        ("4\r\nwiki\r\n0\r\nExpires: never\r\nX-Sum: abc \t def\r\n\r\n", 4),
        ("2\r\n\r\n\r\n0\r\nX: \r\n\r\n", 2),
        ("fFfF\r\n" + String(repeating: "x", count: 0xFFFF) + "\r\n0\r\n\r\n", 0xFFFF),
    ]

    func testValidBodiesAllAtOnce() {
        for (body, payload) in validBodies {
            var decoder = ChunkedDecoder()
            let next = "GET / HTTP/1.1\r\n"
            XCTAssertEqual(feedAll(body + next, decoder: &decoder), .done(consumed: body.utf8.count), body.prefix(40).debugDescription)
            XCTAssertEqual(decoder.payloadBytes, payload)
        }
    }

    func testValidBodiesByteAtATime() {
        for (body, payload) in validBodies {
            var decoder = ChunkedDecoder()
            let (result, consumed) = feedBytewise(body, decoder: &decoder)
            XCTAssertEqual(result, .done(consumed: body.utf8.count), body.prefix(40).debugDescription)
            XCTAssertEqual(consumed, body.utf8.count)
            XCTAssertEqual(decoder.payloadBytes, payload)
        }
    }

    func testSplitAtEveryBoundary() {
        let body = Array("4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n".utf8)
        for split in 1..<body.count {
            var decoder = ChunkedDecoder()
            XCTAssertEqual(body[0..<split].withUnsafeBytes { decoder.consume($0) }, .needMore(consumed: split))
            XCTAssertEqual(body[split...].withUnsafeBytes { decoder.consume($0) }, .done(consumed: body.count - split))
            XCTAssertEqual(decoder.payloadBytes, 9)
        }
    }

    func testDataIsSkippedInOneStep() {
        var decoder = ChunkedDecoder()
        XCTAssertEqual(feedAll("100000\r\n", decoder: &decoder), .needMore(consumed: 8))
        let data = [UInt8](repeating: 0, count: 0x100000)
        XCTAssertEqual(data.withUnsafeBytes { decoder.consume($0) }, .needMore(consumed: data.count))
        XCTAssertEqual(decoder.payloadBytes, 0x100000)
        XCTAssertEqual(feedAll("\r\n0\r\n\r\nrest", decoder: &decoder), .done(consumed: 7))
    }

    func testDoneAndResetAndEmptyInput() {
        var decoder = ChunkedDecoder()
        XCTAssertEqual([UInt8]().withUnsafeBytes { decoder.consume($0) }, .needMore(consumed: 0))
        XCTAssertEqual(feedAll("1\r\na\r\n0\r\n\r\n", decoder: &decoder), .done(consumed: 11))
        XCTAssertEqual(feedAll("more", decoder: &decoder), .done(consumed: 0))
        decoder.reset()
        XCTAssertEqual(decoder.payloadBytes, 0)
        XCTAssertEqual(feedAll("2\r\nab\r\n", decoder: &decoder), .needMore(consumed: 7))
    }

    func testInvalidChunkSizes() {
        let bodies = ["", "x\r\n", "+5\r\nhello\r\n0\r\n\r\n", "-5\r\n", " 5\r\n", "5 \r\n", "5\t\r\n", "0x5\r\n",
                      "5g\r\n", "\r\n", ";ext\r\n", "1234567890abcdef\r\n", "0000000000000001\r\n", "5\n",
                      "5\rhello", "5\r\r\n"]
        for body in bodies {
            var decoder = ChunkedDecoder()
            let result = feedAll(body + "\r\n", decoder: &decoder)
            if body.isEmpty {
                XCTAssertEqual(result, .failed(.fatal("invalid chunk size")))
                continue
            }
            guard case .failed(let error) = result else {
                XCTFail("accepted \(body.debugDescription): \(result)")
                continue
            }
            XCTAssertEqual(error.status, 400, body.debugDescription)
            XCTAssertTrue(error.mustClose, body.debugDescription)
        }
        var decoder = ChunkedDecoder()
        XCTAssertEqual(feedAll("fffffffffffffff\r\n", decoder: &decoder), .needMore(consumed: 17), "15 hex digits fit")
    }

    func testMissingLineEndAfterData() {
        for body in ["5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\r0\r\n\r\n", "5\r\nhello0\r\n\r\n",
                     "3\r\nhello\r\n0\r\n\r\n"] {
            var decoder = ChunkedDecoder()
            guard case .failed(let error) = feedAll(body, decoder: &decoder) else {
                XCTFail("accepted \(body.debugDescription)")
                continue
            }
            XCTAssertEqual(error.status, 400)
            XCTAssertTrue(error.mustClose)
        }
    }

    func testInvalidExtensionsAndTrailers() {
        let bodies = [
            "1;a\u{0}b\r\nx\r\n0\r\n\r\n",
            "1;a\nb\r\nx\r\n0\r\n\r\n",
            "0\r\nX : y\r\n\r\n",
            "0\r\n: y\r\n\r\n",
            "0\r\n y\r\n\r\n",
            "0\r\nX: a\r\n b\r\n\r\n",
            "0\r\nX\r\n\r\n",
            "0\r\nX: a\u{0}\r\n\r\n",
            "0\r\nX: a\rb\r\n\r\n",
            "0\r\nX: a\n\r\n",
            "0\r\n\n",
            "0\r\n\rX",
        ]
        for body in bodies {
            var decoder = ChunkedDecoder()
            let (result, _) = feedBytewise(body, decoder: &decoder)
            guard case .failed(let error) = result else {
                XCTFail("accepted \(body.debugDescription): \(result)")
                continue
            }
            XCTAssertEqual(error.status, 400)
        }
    }

    func testBounds() {
        var decoder = ChunkedDecoder(maxLineBytes: 16, maxTrailerBytes: 20)
        XCTAssertEqual(feedAll("1;" + String(repeating: "e", count: 13) + "\r\n", decoder: &decoder), .needMore(consumed: 17))
        decoder.reset()
        guard case .failed = feedAll("1;" + String(repeating: "e", count: 14) + "\r\n", decoder: &decoder) else {
            return XCTFail("long chunk line accepted")
        }
        decoder.reset()
        XCTAssertEqual(feedAll("0\r\nX: " + String(repeating: "v", count: 14) + "\r\n\r\n", decoder: &decoder),
                       .done(consumed: 24))
        decoder.reset()
        guard case .failed = feedAll("0\r\nX: " + String(repeating: "v", count: 20) + "\r\n\r\n", decoder: &decoder) else {
            return XCTFail("large trailer section accepted")
        }
    }

    /// RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
    /// Each of these was once relayed to the upstream as sent.
    func testChunkExtensionGrammar() {
        let rejected: [[UInt8]] = [
            Array("2;\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a b\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;".utf8) + [0xFF] + Array("\r\nab\r\n0\r\n\r\n".utf8),
            Array("5;a=\"def; ghi\r\nhello\r\n0\r\n\r\n".utf8),
            Array("2;a=\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;=b\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=b c\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=b \r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a \r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=\"x\"y\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=\"x\\".utf8) + [0x01] + Array("\"\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=b;\r\nab\r\n0\r\n\r\n".utf8),
            Array("2;a=(b)\r\nab\r\n0\r\n\r\n".utf8),
            Array("0;\r\n\r\n".utf8),
        ]
        for body in rejected {
            for bytewise in [false, true] {
                var decoder = ChunkedDecoder()
                var result = ChunkedResult.needMore(consumed: 0)
                if bytewise {
                    for byte in body {
                        result = [byte].withUnsafeBytes { decoder.consume($0) }
                        if case .needMore = result { continue }
                        break
                    }
                } else {
                    result = body.withUnsafeBytes { decoder.consume($0) }
                }
                XCTAssertEqual(result, .failed(.fatal("invalid chunk extension")),
                               "\(String(decoding: body, as: UTF8.self).debugDescription) bytewise: \(bytewise)")
            }
        }
        let accepted = ["2;a\r\nab\r\n0\r\n\r\n", "2 ;a\r\nab\r\n0\r\n\r\n", "2;a;b=c\r\nab\r\n0\r\n\r\n",
                        "2; a = \"x;\\\"y\" ; b\r\nab\r\n0\r\n\r\n", "2;a=\"\"\r\nab\r\n0\r\n\r\n"]
        for body in accepted {
            var decoder = ChunkedDecoder()
            XCTAssertEqual(feedAll(body, decoder: &decoder), .done(consumed: body.utf8.count), body.debugDescription)
        }
    }

    /// Copying only the `.copy` segments re-frames a body without its extensions and without
    /// trailer fields (framing, routing and auth fields must not ride in a trailer into a head
    /// upstream), however the bytes arrive; keeping `.payload`, copying them gives the chunk
    /// data alone (for an HTTP/1.0 client).
    func testSegmentsLeaveExtensionsAndTrailersOut() {
        let cases: [(body: String, copied: String, payload: String)] = [
            ("2;a=b\r\nab\r\n0\r\n\r\n", "2\r\nab\r\n0\r\n\r\n", "ab"),
            ("2 ; a = \"x;y\" ;b\r\nab\r\n3\r\ncde\r\n0;last\r\nT: v\r\n\r\n",
             "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", "abcde"),
            ("4\r\nwiki\r\n0\r\n\r\n", "4\r\nwiki\r\n0\r\n\r\n", "wiki"),
            ("1\r\nx\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n",
             "1\r\nx\r\n0\r\n\r\n", "x"),
            ("0\r\n\r\n", "0\r\n\r\n", ""),
            ("a\r\n0123456789\r\n1;e\r\n\r\r\n0\r\n\r\n", "a\r\n0123456789\r\n1\r\n\r\r\n0\r\n\r\n", "0123456789\r"),
        ]
        for (body, copiedChunks, payload) in cases {
            let bytes = Array((body + "NEXT").utf8)
            for keep in [ChunkedKeep.chunks, .payload] {
                let expected = keep == .chunks ? copiedChunks : payload
                for piece in [bytes.count, 1, 3, 7] {
                    var decoder = ChunkedDecoder()
                    var copied: [UInt8] = []
                    var skipped = 0
                    var finished = -1
                    var at = 0
                    feeding: while at < bytes.count {
                        let end = min(at + piece, bytes.count)
                        // Each call sees the bytes that arrived so far, as a relay's buffer would.
                        let chunk = Array(bytes[at..<end])
                        var from = 0
                        while true {
                            let segment = chunk.withUnsafeBytes { decoder.nextSegment($0, from: from, keep: keep) }
                            switch segment {
                            case .copy(let e):
                                copied += chunk[from..<e]
                                from = e
                            case .skip(let e):
                                skipped += e - from
                                from = e
                            case .done(let e):
                                copied += chunk[from..<e]
                                finished = at + e
                                break feeding
                            case .needMore:
                                break
                            case .failed(let error):
                                XCTFail("\(body.debugDescription): \(error)")
                                break feeding
                            }
                            if case .needMore = segment { break }
                        }
                        at = end
                    }
                    XCTAssertEqual(String(decoding: copied, as: UTF8.self), expected, "\(body.debugDescription) in \(piece)-byte pieces")
                    XCTAssertEqual(finished, body.utf8.count, body.debugDescription)
                    XCTAssertEqual(copied.count + skipped, body.utf8.count)
                }
            }
        }
        var decoder = ChunkedDecoder()
        let bad = Array("2;a b\r\n".utf8)
        XCTAssertEqual(bad.withUnsafeBytes { decoder.nextSegment($0, from: 0) }, .copy(end: 1))
        XCTAssertEqual(bad.withUnsafeBytes { decoder.nextSegment($0, from: 1) }, .failed(.fatal("invalid chunk extension")))
    }

    func testFailureIsSticky() {
        var decoder = ChunkedDecoder()
        let first = feedAll("z", decoder: &decoder)
        XCTAssertEqual(feedAll("0\r\n\r\n", decoder: &decoder), first)
    }
}
