// Header fields in the canonical request, against byte-at-a-time references: names lowercased
// and values trimmed with each inner run of whitespace one space. Both are done eight bytes at a
// time, so every byte value and every offset is tried.
import SigV4
import XCTest

final class CanonicalHeaderTests: XCTestCase {
    /// The rule as AWS states it, one byte at a time.
    private func reference(_ value: [UInt8]) -> [UInt8] {
        let ws: Set<UInt8> = [0x20, 0x09, 0x0D, 0x0A]
        var out: [UInt8] = []
        var pending = false
        for b in value {
            if ws.contains(b) {
                pending = !out.isEmpty
                continue
            }
            if pending { out.append(0x20) }
            pending = false
            out.append(b)
        }
        return out
    }

    func testWhitespaceAtEveryOffsetOfLongValuesIsTrimmedAndCollapsed() {
        let base = Array("0123456789abcdefghijklmnopqrstuv".utf8)
        let inserts: [[UInt8]] = [[0x20], [0x20, 0x20], [0x09], [0x20, 0x0D, 0x0A, 0x20], [0x01], [0x01, 0x20, 0x20], [0x7F, 0x80, 0xFF]]
        var cases = 0
        for insert in inserts {
            for at in 0...base.count {
                var value = base
                value.insert(contentsOf: insert, at: at)
                let (canonical, _) = SigV4Canonical.headers([(Array("X-Test".utf8), value)])
                XCTAssertEqual(canonical, Array("x-test:".utf8) + reference(value) + [0x0A], "\(insert) at \(at)")
                cases += 1
            }
        }
        XCTAssertEqual(cases, inserts.count * (base.count + 1))
    }

    func testNamesAreLowercasedForEveryByteValueAtEveryOffset() {
        let all = (1...255).map { UInt8($0) }.filter { $0 != UInt8(ascii: ":") }
        for shift in 0..<8 {
            let name = Array(repeating: UInt8(ascii: "Q"), count: shift) + all
            let (canonical, signed) = SigV4Canonical.headers([(name, Array("v".utf8))])
            let lowered = name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }
            XCTAssertEqual(signed, lowered, "shifted by \(shift)")
            XCTAssertEqual(canonical, lowered + Array(":v\n".utf8), "shifted by \(shift)")
        }
    }
}
