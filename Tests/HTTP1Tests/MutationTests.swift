// Mutated messages: the parsers must never read out of bounds, and feeding bytes one at a time must
// reach the same answer as feeding them all at once, or the proxy's framing would depend on how
// packets happen to be split.

import XCTest
@testable import HTTP1

private struct LCG {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }
}

private let interesting: [UInt8] = Array(" \t\r\n:;,0\u{0}/?*".utf8) + [0x80, 0xFF, 0x7F, UInt8(ascii: "a"), UInt8(ascii: "9")]

private func mutate(_ seed: [UInt8], _ rng: inout LCG) -> [UInt8] {
    var bytes = seed
    for _ in 0..<(1 + rng.next(3)) {
        let at = rng.next(bytes.count)
        switch rng.next(3) {
        case 0: bytes[at] = interesting[rng.next(interesting.count)]
        case 1: bytes.insert(interesting[rng.next(interesting.count)], at: at)
        default: if bytes.count > 1 { bytes.remove(at: at) }
        }
    }
    return bytes
}

final class MutationTests: XCTestCase {
    private let requests = [
        "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
        "\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\nbody",
        "PUT http://h/x HTTP/1.0\nTransfer-Encoding: chunked\nHost: [::1]\n\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ].map { Array($0.utf8) }

    private let responses = [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "HTTP/1.0 101 Switching\r\nUpgrade: ws\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 304 Not Modified\nDate: x\n\n",
    ].map { Array($0.utf8) }

    private let bodies = [
        "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\nnext",
        "1\r\nx\r\nA\r\n0123456789\r\n0\r\n\r\n",
    ].map { Array($0.utf8) }

    func testRequestsAgreeWhateverTheSplit() {
        var rng = LCG(state: 1)
        let limits = HTTPLimits(maxHeadBytes: 120, maxHeaders: 4, maxURIBytes: 16)
        for round in 0..<3000 {
            let bytes = mutate(requests[round % requests.count], &rng)
            var oneShot = RequestParser(limits: limits)
            var head = RequestHead()
            let whole = bytes.withUnsafeBytes { oneShot.parse($0, into: &head) }
            let wholeLength = head.headLength

            var incremental = RequestParser(limits: limits)
            var status = ParseStatus.incomplete
            for n in 1...bytes.count {
                status = bytes[0..<n].withUnsafeBytes { incremental.parse($0, into: &head) }
                if status != .incomplete { break }
            }
            XCTAssertEqual(status, whole, String(decoding: bytes, as: UTF8.self).debugDescription)
            if status == .complete { XCTAssertEqual(head.headLength, wholeLength) }
        }
    }

    func testResponsesAgreeWhateverTheSplit() {
        var rng = LCG(state: 2)
        for round in 0..<3000 {
            let bytes = mutate(responses[round % responses.count], &rng)
            for method in [HTTP1.Method.get, .head] {
                var oneShot = ResponseParser(limits: HTTPLimits(maxHeadBytes: 100))
                var head = ResponseHead()
                let whole = bytes.withUnsafeBytes { oneShot.parse($0, requestMethod: method, into: &head) }
                var incremental = ResponseParser(limits: HTTPLimits(maxHeadBytes: 100))
                var status = ParseStatus.incomplete
                for n in 1...bytes.count {
                    status = bytes[0..<n].withUnsafeBytes { incremental.parse($0, requestMethod: method, into: &head) }
                    if status != .incomplete { break }
                }
                XCTAssertEqual(status, whole, String(decoding: bytes, as: UTF8.self).debugDescription)
                if case .failed(let e) = status { XCTAssertEqual(e.status, 502) }
            }
        }
    }

    func testChunkedBodiesAgreeWhateverTheSplit() {
        var rng = LCG(state: 3)
        for round in 0..<3000 {
            let bytes = mutate(bodies[round % bodies.count], &rng)
            var oneShot = ChunkedDecoder(maxLineBytes: 12, maxTrailerBytes: 12)
            let whole = bytes.withUnsafeBytes { oneShot.consume($0) }

            var incremental = ChunkedDecoder(maxLineBytes: 12, maxTrailerBytes: 12)
            var consumed = 0
            var result = ChunkedResult.needMore(consumed: 0)
            for i in bytes.indices {
                result = bytes[i...i].withUnsafeBytes { incremental.consume($0) }
                if case .needMore(let n) = result { consumed += n } else { break }
            }
            switch (whole, result) {
            case (.done(let a), .done(let b)):
                XCTAssertEqual(a, consumed + b)
            case (.needMore(let a), .needMore):
                XCTAssertEqual(a, consumed)
            case (.failed(let a), .failed(let b)):
                XCTAssertEqual(a, b)
            default:
                XCTFail("\(whole) vs \(result): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
            XCTAssertEqual(oneShot.payloadBytes, incremental.payloadBytes)
        }
    }
}
