// HMAC-SHA256 against RFC 4231 vectors.
import Crypto
import XCTest

final class HMACTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0 >> 4, radix: 16) + String($0 & 0x0f, radix: 16) }.joined()
    }

    private func mac(_ key: [UInt8], _ message: String) -> String {
        var out = [UInt8](repeating: 0, count: HMACSHA256.byteCount)
        Array(message.utf8).withUnsafeBytes { m in out.withUnsafeMutableBytes { HMACSHA256.mac(key: key, message: m, into: $0) } }
        return hex(out)
    }

    /// RFC 4231 test cases 2, 1 and 6 (a key longer than the block size).
    private static let vectors: [(key: [UInt8], message: String, mac: String)] = [
        (Array("Jefe".utf8), "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0x0b, count: 20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ([UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ]

    func testRFC4231() {
        for v in Self.vectors { XCTAssertEqual(mac(v.key, v.message), v.mac) }
    }

    func testPrecomputedKeyGivesTheSameMacEveryTimeItIsUsed() {
        for v in Self.vectors {
            let key = HMACSHA256Key(v.key)
            for _ in 0..<2 {   // the padded states are copied, not spent
                var out = [UInt8](repeating: 0, count: HMACSHA256.byteCount)
                Array(v.message.utf8).withUnsafeBytes { m in out.withUnsafeMutableBytes { key.mac(m, into: $0) } }
                XCTAssertEqual(hex(out), v.mac)
            }
            XCTAssertEqual(hex(HMACSHA256.mac(key: v.key, message: Array(v.message.utf8))), v.mac)
        }
    }

    func testSignerMatchesMacAndHandlesEmptyInput() {
        let signer = HMACSHA256.signer(secret: Array("Jefe".utf8))
        var out = [UInt8](repeating: 0, count: 32)
        Array("what do ya want for nothing?".utf8).withUnsafeBytes { m in out.withUnsafeMutableBytes { signer(m, $0) } }
        XCTAssertEqual(hex(out), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // HMAC-SHA256 with an empty key and an empty message.
        XCTAssertEqual(mac([], ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }
}
