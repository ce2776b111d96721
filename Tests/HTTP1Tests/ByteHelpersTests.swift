// The byte-level building blocks: character-class masks checked against the RFC's lists, case
// folding, and status reason phrases.

import XCTest
@testable import HTTP1

final class ByteHelpersTests: XCTestCase {
    func testTokenMaskMatchesRFC9110() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for b in 0...255 {
            XCTAssertEqual(isTokenByte(UInt8(b)), tchar.contains(UInt8(b)), "byte \(b)")
        }
    }

    func testRegNameMaskMatchesRFC3986() {
        let chars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=".utf8)
        for b in 0...255 {
            XCTAssertEqual(isRegNameByte(UInt8(b)), chars.contains(UInt8(b)), "byte \(b)")
        }
    }

    func testFieldBytesAndHex() {
        for b in 0...255 {
            let byte = UInt8(b)
            XCTAssertEqual(isFieldByte(byte), b == 9 || (b >= 0x20 && b != 0x7F), "byte \(b)")
            let expected: UInt8? = switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
            XCTAssertEqual(hexValue(byte), expected, "byte \(b)")
        }
    }

    func testCaseInsensitiveEquals() {
        let cases: [(String, StaticString, Bool)] = [
            ("Content-Length", "content-length", true), ("CONTENT-LENGTH", "content-length", true),
            ("content-length", "content-length", true), ("Content-Lengths", "content-length", false),
            ("", "", true), ("@", "`", false), ("[", "{", false), ("^", "~", false), ("\u{e9}", "\u{e9}", true),
        ]
        for (a, b, equal) in cases {
            Array(a.utf8).withUnsafeBytes { bytes in
                XCTAssertEqual(asciiCaseInsensitiveEquals(bytes, UnsafeRawBufferPointer(b)), equal, a)
            }
        }
    }

    func testNextLFFindsEveryPosition() {
        for length in 0..<40 {
            for lf in 0...length {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                if lf < length { bytes[lf] = 0x0A }
                for from in 0...length {
                    let found = bytes.withUnsafeBytes { nextLF($0, from: from, limit: length) }
                    XCTAssertEqual(found, lf >= from ? lf : length, "len \(length) lf \(lf) from \(from)")
                }
            }
        }
        // Bytes that differ from LF only in one bit must not be mistaken for it.
        let lookalikes: [UInt8] = [0x0B, 0x08, 0x8A, 0x0E, 0x1A, 0x4A, 0x00, 0xFF, 0x09]
        let bytes = lookalikes + lookalikes + [0x0A]
        XCTAssertEqual(bytes.withUnsafeBytes { nextLF($0, from: 0, limit: bytes.count) }, bytes.count - 1)
    }

    func testStatusReasons() {
        let cases: [(Int, String)] = [
            (200, "OK"), (400, "Bad Request"), (413, "Content Too Large"), (414, "URI Too Long"),
            (417, "Expectation Failed"), (431, "Request Header Fields Too Large"), (501, "Not Implemented"),
            (502, "Bad Gateway"), (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"), (299, "Unknown"),
        ]
        for (code, reason) in cases {
            XCTAssertEqual(HTTPStatus.reason(code).description, reason)
        }
    }

    func testParseErrorEquality() {
        let a = HTTPParseError(status: 400, reason: "invalid Content-Length", mustClose: true)
        XCTAssertEqual(a, HTTPParseError(status: 400, reason: "invalid Content-Length", mustClose: true))
        XCTAssertNotEqual(a, HTTPParseError(status: 400, reason: "invalid Host", mustClose: true))
        XCTAssertNotEqual(a, HTTPParseError(status: 400, reason: "invalid Content-Length", mustClose: false))
        XCTAssertNotEqual(a, HTTPParseError(status: 502, reason: "invalid Content-Length", mustClose: true))
    }
}
