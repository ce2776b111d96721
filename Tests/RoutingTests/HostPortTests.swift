// The one host:port reader: what it splits, and the two ways it refuses.
import Routing
import XCTest

final class HostPortTests: XCTestCase {
    func testSplits() {
        let rows: [(String, String, String?, Bool)] = [
            ("127.0.0.1:8080", "127.0.0.1", "8080", false),
            ("api.example.com", "api.example.com", nil, false),
            ("api.example.com:", "api.example.com", "", false),
            ("[::1]:443", "::1", "443", true),
            ("[::1]", "::1", nil, true),
            ("[2001:db8::1]:0", "2001:db8::1", "0", true),
            (":80", "", "80", false),
            ("::1", ":", "1", false),   // unbracketed IPv6: the caller refuses a host with a colon
            ("", "", nil, false),
        ]
        for (text, host, port, bracketed) in rows {
            guard case .success(let p) = HostPort.split(text) else { return XCTFail(text) }
            XCTAssertEqual(String(p.host), host, text)
            XCTAssertEqual(p.port.map(String.init), port, text)
            XCTAssertEqual(p.bracketed, bracketed, text)
        }
    }

    func testRefuses() {
        XCTAssertEqual(HostPort.split("[::1"), .failure(.unclosedBracket))
        XCTAssertEqual(HostPort.split("[::1]80"), .failure(.textAfterBracket))
        XCTAssertEqual(HostPort.split("[::1]x:80"), .failure(.textAfterBracket))
    }

    func testPortNumbers() {
        func port(_ text: String, _ range: ClosedRange<Int> = 1...65535) -> UInt16? {
            guard case .success(let p) = HostPort.split(text) else { return nil }
            return p.portNumber(in: range)
        }
        XCTAssertEqual(port("a:1"), 1)
        XCTAssertEqual(port("a:65535"), 65535)
        XCTAssertNil(port("a:65536"))
        XCTAssertNil(port("a:0"))
        XCTAssertEqual(port("a:0", 0...65535), 0)
        XCTAssertNil(port("a:+80"))
        XCTAssertNil(port("a:-1"))
        XCTAssertNil(port("a: 80"))
        XCTAssertNil(port("a:99999999999999999999999"), "no trap on a number past Int")
        XCTAssertNil(port("a"))
        XCTAssertNil(port("a:"))
    }
}
