// The etcd client's own JSON and base64, checked against Foundation's on random and hostile input.
@testable import Etcd
import Foundation
import XCTest

final class EtcdCodecTests: XCTestCase {
    func testBase64MatchesFoundationBothWays() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let ours = Base64.encode(bytes)
            XCTAssertEqual(ours, Data(bytes).base64EncodedString(), "length \(length)")
            XCTAssertEqual(Base64.decode(ours), bytes, "length \(length)")
        }
        for bad in ["a", "abc", "ab=c", "a===", "====", "ab\ncd==", "YWJj!A==", "YQ==YQ=="] {
            XCTAssertNil(Base64.decode(bad), bad)
        }
    }

    func testWrittenJSONReadsBackAndFoundationAgrees() throws {
        let value: [String: Any] = ["s": "quote \" backslash \\ newline \n tab \t nul \u{0} é", "n": Int64(-5), "u": UInt64(7),
                                    "b": true, "a": [1, "x", false] as [Any], "o": ["k": "v"], "d": 5.5]
        let bytes = JSONValues.write(value)
        let foundation = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        XCTAssertEqual(foundation["s"] as? String, value["s"] as? String)
        let ours = try XCTUnwrap(JSONValues.read(bytes) as? [String: Any])
        XCTAssertEqual(ours["s"] as? String, value["s"] as? String)
        XCTAssertEqual(JSONValues.integer(ours["n"]), -5)
        XCTAssertEqual(JSONValues.integer(ours["u"]), 7)
        XCTAssertEqual(ours["b"] as? Bool, true)
        XCTAssertEqual((ours["o"] as? [String: Any])?["k"] as? String, "v")
        XCTAssertEqual(JSONValues.write(["b": 1, "a": 2]), Array(#"{"a":2,"b":1}"#.utf8), "keys in order")
        for bad in ["1e3", "1.5", "-", "", "99999999999999999999", "0x10", " 1"] {
            XCTAssertNil(JSONValues.integer(bad), bad)
        }
        XCTAssertNil(JSONValues.read(Array("{\"a\":".utf8)))
    }
}
