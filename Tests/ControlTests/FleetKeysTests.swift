// The overrides as etcd keys and back: every kind, and values that are not what they should be.
import Etcd
@testable import Fleet
@testable import Runtime
import XCTest

final class FleetKeysTests: XCTestCase {
    func testEveryKindRoundTrips() {
        var o = Overrides()
        o.live["checkout"] = "green"
        o.weights["api"] = ["stable": 90, "canary": 10]
        o.mirrors["api"] = ["shadow": 5.5, "other": 0]
        var p = PoolChanges()
        p.added = ["10.0.0.1:80", "b.example:443"]
        p.draining = ["10.0.0.2:80"]
        o.endpoints["checkout/blue"] = p
        o.guards["i0-1"] = #"{"summary":"x"}"#
        let entries = FleetKeys.entries(o, prefix: "/p/")
        var kvs: [String: EtcdKeyValue] = [:]
        for (k, v) in entries { kvs[k] = EtcdKeyValue(key: k, value: v) }
        let (back, problems) = FleetKeys.overrides(kvs, prefix: "/p/")
        XCTAssertEqual(problems, [])
        XCTAssertEqual(back, o)
        XCTAssertEqual(String(decoding: entries["/p/state/weights/api"]!, as: UTF8.self), #"{"canary":10,"stable":90}"#)
    }

    func testValuesOfTheWrongShapeAreLeftOut() {
        let bad: [(String, String)] = [("live/x", "5"), ("weights/r", #"{"a":-1}"#), ("weights/r2", #"{"a":"10"}"#),
                                       ("weights/r3", #"{"a":1e400}"#), ("mirrors/r", #"{"s":"x"}"#), ("endpoints/u", #"{"added":[1]}"#),
                                       ("nosuch/x", "1"), ("live", "\"green\""), ("live/y", "not json")]
        var kvs: [String: EtcdKeyValue] = [:]
        for (k, v) in bad { kvs["/p/state/" + k] = EtcdKeyValue(key: "/p/state/" + k, value: Array(v.utf8)) }
        let (back, problems) = FleetKeys.overrides(kvs, prefix: "/p/")
        XCTAssertEqual(back, Overrides())
        XCTAssertEqual(problems.count, bad.count, "\(problems)")
    }
}
