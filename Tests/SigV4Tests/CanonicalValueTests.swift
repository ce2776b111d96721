// Header values in the canonical request: trimmed, each inner run of whitespace one space. The
// scan skips eight bytes at a time while none is whitespace or a control byte, so whitespace
// is placed at every offset of long values, against a byte-at-a-time reference.
import SigV4
import XCTest

final class CanonicalValueTests: XCTestCase {
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
}
