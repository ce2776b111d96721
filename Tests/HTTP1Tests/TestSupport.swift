// Helpers for Switchyard's HTTP1 tests: run a parser over literal text and read slices back.

import XCTest
@testable import HTTP1

struct ParsedRequest {
    let bytes: [UInt8]
    let status: ParseStatus
    let head: RequestHead

    func text(_ start: Int32, _ end: Int32) -> String {
        String(decoding: bytes[Int(start)..<Int(end)], as: UTF8.self)
    }

    var method: String { text(head.methodStart, head.methodEnd) }
    var target: String { text(head.targetStart, head.targetEnd) }
    var path: String { text(head.targetStart, head.pathEnd) }

    func field(_ name: String) -> HeaderField? {
        head.headers.first { text($0.nameStart, $0.nameEnd).lowercased() == name.lowercased() }
    }

    func value(_ name: String) -> String? {
        field(name).map { text($0.valueStart, $0.valueEnd) }
    }

    var error: HTTPParseError? {
        if case .failed(let e) = status { return e }
        return nil
    }
}

struct ParsedResponse {
    let bytes: [UInt8]
    let status: ParseStatus
    let head: ResponseHead

    func text(_ start: Int32, _ end: Int32) -> String {
        String(decoding: bytes[Int(start)..<Int(end)], as: UTF8.self)
    }

    var error: HTTPParseError? {
        if case .failed(let e) = status { return e }
        return nil
    }
}

func parseRequest(_ text: String, limits: HTTPLimits = HTTPLimits()) -> ParsedRequest {
    parseRequest(Array(text.utf8), limits: limits)
}

func parseRequest(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> ParsedRequest {
    var parser = RequestParser(limits: limits)
    var head = RequestHead()
    let status = bytes.withUnsafeBytes { parser.parse($0, into: &head) }
    return ParsedRequest(bytes: bytes, status: status, head: head)
}

func parseResponse(_ text: String, method: HTTP1.Method = .get, limits: HTTPLimits = HTTPLimits()) -> ParsedResponse {
    let bytes = Array(text.utf8)
    var parser = ResponseParser(limits: limits)
    var head = ResponseHead()
    let status = bytes.withUnsafeBytes { parser.parse($0, requestMethod: method, into: &head) }
    return ParsedResponse(bytes: bytes, status: status, head: head)
}

/// One row of an error table: the input, and the status and mustClose it must fail with.
struct Rejection {
    let input: String
    let status: Int
    let mustClose: Bool
    let line: UInt

    init(_ input: String, _ status: Int, mustClose: Bool, line: UInt = #line) {
        self.input = input
        self.status = status
        self.mustClose = mustClose
        self.line = line
    }
}

func assertRequestsRejected(_ rows: [Rejection], limits: HTTPLimits = HTTPLimits(), file: StaticString = #filePath) {
    for row in rows {
        let r = parseRequest(row.input, limits: limits)
        guard let error = r.error else {
            XCTFail("accepted (\(r.status)): \(row.input.debugDescription)", file: file, line: row.line)
            continue
        }
        XCTAssertEqual(error.status, row.status, "\(error.reason): \(row.input.debugDescription)", file: file, line: row.line)
        XCTAssertEqual(error.mustClose, row.mustClose, "\(error.reason): \(row.input.debugDescription)", file: file, line: row.line)
    }
}

func assertResponsesRejected(_ rows: [String], method: HTTP1.Method = .get, file: StaticString = #filePath, line: UInt = #line) {
    for input in rows {
        let r = parseResponse(input, method: method)
        guard let error = r.error else {
            XCTFail("accepted (\(r.status)): \(input.debugDescription)", file: file, line: line)
            continue
        }
        XCTAssertEqual(error.status, 502, "\(error.reason): \(input.debugDescription)", file: file, line: line)
        XCTAssertTrue(error.mustClose, "\(error.reason): \(input.debugDescription)", file: file, line: line)
    }
}
