// Mirror sampling: percentages, method filters, independence between mirrors.
import Routing
import XCTest

final class MirrorTests: XCTestCase {
    private let readOnly = [b("GET"), b("HEAD"), b("OPTIONS")]

    private func randoms(_ count: Int) -> [UInt64] {
        var x: UInt64 = 0x9e37_79b9
        return (0..<count).map { _ in
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return x
        }
    }

    /// A percent that is not one (NaN, infinite, past 100) is clamped, never a trap in Int(_:).
    func testPercentsOutOfRangeAreClamped() {
        XCTAssertEqual(Mirror(upstream: 0, percent: .nan, maxBodyBytes: 0, methods: [], hostSuffix: nil).ppm, 0)
        XCTAssertEqual(Mirror(upstream: 0, percent: .infinity, maxBodyBytes: 0, methods: [], hostSuffix: nil).ppm, 1_000_000)
        XCTAssertEqual(Mirror(upstream: 0, percent: 1e300, maxBodyBytes: 0, methods: [], hostSuffix: nil).ppm, 1_000_000)
        XCTAssertEqual(Mirror(upstream: 0, percent: -5, maxBodyBytes: 0, methods: [], hostSuffix: nil).ppm, 0)
        XCTAssertEqual(Mirror(upstream: 0, percent: 12.5, maxBodyBytes: 0, methods: [], hostSuffix: nil).ppm, 125_000)
    }

    func testPercentages() {
        let mirrors = [
            Mirror(upstream: 3, percent: 0, maxBodyBytes: 0, methods: [], hostSuffix: nil),
            Mirror(upstream: 3, percent: 100, maxBodyBytes: 0, methods: [], hostSuffix: nil),
            Mirror(upstream: 5, percent: 50, maxBodyBytes: 0, methods: [], hostSuffix: nil),
            Mirror(upstream: 5, percent: 50, maxBodyBytes: 0, methods: [], hostSuffix: nil),
            Mirror(upstream: 5, percent: 0.5, maxBodyBytes: 0, methods: [], hostSuffix: nil),
        ]
        let snap = snapshot([route(mirrors: mirrors)])
        var counts = [Int](repeating: 0, count: mirrors.count)
        var both = 0
        let n = 20_000
        for random in randoms(n) {
            let mask = decide(snap, TestRequest(), random: random).mirrorMask
            XCTAssertEqual(mask >> mirrors.count, 0)
            for i in mirrors.indices where mask & (1 << i) != 0 { counts[i] += 1 }
            if mask & 0b1100 == 0b1100 { both += 1 }
        }
        XCTAssertEqual(counts[0], 0)
        XCTAssertEqual(counts[1], n)
        XCTAssertEqual(Double(counts[2]) * 100 / Double(n), 50, accuracy: 1)
        XCTAssertEqual(Double(counts[3]) * 100 / Double(n), 50, accuracy: 1)
        XCTAssertEqual(Double(counts[4]) * 100 / Double(n), 0.5, accuracy: 0.2)
        // Two 50% mirrors draw independently: both about a quarter of the time.
        XCTAssertEqual(Double(both) * 100 / Double(n), 25, accuracy: 1)
    }

    func testMethodFilter() {
        let mirrors = [
            Mirror(upstream: 3, percent: 100, maxBodyBytes: 0, methods: readOnly, hostSuffix: nil),
            Mirror(upstream: 5, percent: 100, maxBodyBytes: 0, methods: [], hostSuffix: nil),
            Mirror(upstream: 5, percent: 100, maxBodyBytes: 0, methods: [b("POST")], hostSuffix: nil),
        ]
        let snap = snapshot([route(mirrors: mirrors)])
        let cases: [(method: String, mask: UInt64)] = [
            ("GET", 0b011), ("HEAD", 0b011), ("OPTIONS", 0b011), ("POST", 0b110), ("DELETE", 0b010), ("get", 0b010),
        ]
        for c in cases {
            XCTAssertEqual(decide(snap, TestRequest(c.method), random: 99).mirrorMask, c.mask, c.method)
        }
    }

    func testAtMostSixtyFourMirrorsAndSplitRoutesMirrorToo() {
        let many = (0..<70).map { _ in Mirror(upstream: 3, percent: 100, maxBodyBytes: 0, methods: [], hostSuffix: nil) }
        XCTAssertEqual(decide(snapshot([route(mirrors: many)]), TestRequest(), random: 1).mirrorMask, .max)
        let splitRoute = route(target: .split(split([95, 5])), mirrors: [many[0]])
        XCTAssertEqual(decide(snapshot([splitRoute]), TestRequest(), random: 1).mirrorMask, 1)
        XCTAssertEqual(decide(snapshot([route()]), TestRequest(), random: 1).mirrorMask, 0)
    }
}
