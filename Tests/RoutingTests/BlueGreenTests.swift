// Blue/green: the live color serves, the preview header reaches the idle one.
import Routing
import XCTest

final class BlueGreenTests: XCTestCase {
    func testLiveAndPreview() {
        let cases: [(live: Color, header: String?, headers: [(String, String)], color: Color)] = [
            (.blue, "x-preview", [], .blue),
            (.green, "x-preview", [], .green),
            (.blue, "x-preview", [("X-Preview", "green")], .green),
            (.blue, "x-preview", [("x-preview", "GREEN")], .green),
            (.blue, "x-preview", [("x-preview", "blue")], .blue),          // naming the live color changes nothing
            (.blue, "x-preview", [("x-preview", "greenish")], .blue),
            (.blue, "x-preview", [("x-preview", "")], .blue),
            (.green, "x-preview", [("x-preview", "Blue")], .blue),
            (.blue, nil, [("x-preview", "green")], .blue),                 // no preview header configured
            (.blue, "x-preview", [("x-other", "green")], .blue),
        ]
        for (i, c) in cases.enumerated() {
            let snap = snapshot([route(target: .upstream(4))], live: c.live, previewHeader: c.header)
            let d = decide(snap, TestRequest(headers: c.headers), random: 0)
            XCTAssertEqual(d.upstream, 4, "case \(i)")
            XCTAssertEqual(d.color, c.color, "case \(i)")
        }
    }

    func testVariantOnBlueGreenUpstreamGetsAColor() {
        let variants = [Variant(name: "main", upstream: 4, weight: 1), Variant(name: "next", upstream: 1, weight: 0)]
        let s = Split(variants: variants, rules: [], overrideHeader: b("x-switchyard-variant"), overrideTrust: .everyone, sticky: nil)
        let snap = snapshot([route(target: .split(s))], live: .green)
        let d = decide(snap, TestRequest(headers: [("x-preview", "blue")]), random: 0)
        XCTAssertEqual(d.upstream, 4)
        XCTAssertEqual(d.color, .blue)
        let plain = decide(snap, TestRequest(headers: [("x-switchyard-variant", "next")]), random: 0)
        XCTAssertEqual(plain.upstream, 1)
        XCTAssertNil(plain.color)
    }
}
