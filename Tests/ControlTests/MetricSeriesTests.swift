// Label sets and their ids: escaping in the exposition, ids given out again only after release,
// a full table refusing rather than growing, and the access-log/tracing config keys.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Proxy
@testable import Rollouts
@testable import Runtime
import XCTest

final class MetricSeriesTests: XCTestCase {
    func testLabelsAreEscapedForTheTextFormat() {
        let t = SeriesTable(labels: ["route", "variant"], capacity: 8)
        let id = t.id(["a\"b", "c\\d\ne"])
        XCTAssertEqual(t.series(id)?.labels, #"route="a\"b",variant="c\\d\ne""#)
        XCTAssertEqual(t.id(["a\"b", "c\\d\ne"]), id, "the same label set, the same id")
    }

    func testReleasedIdsAreReusedAndAFullTableRefuses() {
        let t = SeriesTable(labels: ["endpoint"], capacity: 2)
        let a = t.id(["a"]), b = t.id(["b"])
        XCTAssertEqual([a, b], [0, 1])
        XCTAssertEqual(t.id(["c"]), -1, "full")
        XCTAssertEqual(t.release { _, s in s.values == ["a"] }, 1)
        XCTAssertNil(t.existingID(["a"]))
        XCTAssertEqual(t.id(["c"]), a)
        XCTAssertEqual(t.series(a)?.values, ["c"])
    }

    func testHistogramTextIsCumulativeAndEndsWithCount() {
        var w = PrometheusText()
        var buckets = [UInt64](repeating: 0, count: LatencyBuckets.count + 1)
        buckets[0] = 2
        buckets[3] = 1
        buckets[LatencyBuckets.count] = 1
        w.family("h", .histogram, "help")
        w.histogram("h", "route=\"r\"", buckets: buckets, sumNs: 31_500_000_000)
        let lines = w.text.split(separator: "\n")
        XCTAssertEqual(lines[2], #"h_bucket{route="r",le="0.0005"} 2"#)
        XCTAssertEqual(lines[5], #"h_bucket{route="r",le="0.005"} 3"#)
        XCTAssertTrue(lines.contains(#"h_bucket{route="r",le="30"} 3"#))
        XCTAssertTrue(lines.contains(#"h_bucket{route="r",le="+Inf"} 4"#))
        XCTAssertTrue(lines.contains(#"h_sum{route="r"} 31.5"#))
        XCTAssertTrue(lines.contains(#"h_count{route="r"} 4"#))
    }

    func testAccessLogAndTracingKeys() throws {
        let base = #"{ "listeners": [ { "address": "127.0.0.1:0" } ], "upstreams": { "a": { "endpoints": ["127.0.0.1:1"] } }, "routes": [ { "name": "r", "upstream": "a" } ]"#
        let ok = try ConfigLoader.parse(bytes: Array((base + #", "accessLog": { "path": "stdout", "sample": 0.25, "maxQueryBytes": 0 }, "tracing": { "startWhenMissing": true } }"#).utf8), file: "t.json")
        XCTAssertEqual(ok.config.accessLog, Config.AccessLog(path: "stdout", sample: 0.25, maxQueryBytes: 0))
        XCTAssertEqual(ok.config.proxySettings.accessLog?.sample, 0.25)
        XCTAssertTrue(ok.config.proxySettings.tracing.startWhenMissing)
        for (bad, expected) in [(#""accessLog": { "path": "x", "sample": 2 }"#, "accessLog.sample: must be between 0 and 1"),
                                (#""accessLog": { "sample": 1 }"#, "accessLog.path"),
                                (#""accessLog": { "path": "x", "format": "json" }"#, "accessLog.format"),
                                (#""tracing": { "start": true }"#, "tracing.start")] {
            XCTAssertThrowsError(try ConfigLoader.parse(bytes: Array((base + ", " + bad + " }").utf8), file: "t.json")) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
