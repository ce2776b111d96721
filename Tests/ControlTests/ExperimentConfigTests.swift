// The experiment block's validation: each bad value is refused with its key path and reason, and
// a good one reaches the snapshot with its goals, control and unit key.
@testable import Config
import Routing
@testable import Runtime
import XCTest

final class ExperimentConfigTests: XCTestCase {
    private static let upstreams = #"{ "a": { "endpoints": ["127.0.0.1:9001"] }, "b": { "endpoints": ["127.0.0.1:9002"] } }"#

    private func doc(experiment: String, sticky: String? = #"{ "salt": "shop" }"#, rollout: String? = nil) -> String {
        let route = """
            [{ "name": "shop", "split": [ { "variant": "A", "upstream": "a", "weight": 50 }, { "variant": "B", "upstream": "b", "weight": 50 } ]
               \(sticky.map { ", \"sticky\": \($0)" } ?? ""), "experiment": \(experiment)\(rollout.map { ", \"rollout\": \($0)" } ?? "") }]
            """
        return Doc.make(upstreams: Self.upstreams, routes: route)
    }

    func testBadExperimentsAreRefusedWithTheirKeyPath() {
        assertError(doc(experiment: "{}", sticky: nil), #"routes[0].experiment: needs "sticky" on the route"#)
        assertError(doc(experiment: #"{ "name": "a b" }"#), "routes[0].experiment.name: invalid experiment name")
        assertError(doc(experiment: #"{ "exposureLog": "logs/x.jsonl" }"#),
                    #"routes[0].experiment.exposureLog: must be an absolute path, "stdout" or "stderr""#)
        assertError(doc(experiment: #"{ "exposures": "always" }"#), #"routes[0].experiment.exposures: must be "assignment" or "process""#)
        assertError(doc(experiment: #"{ "control": "C" }"#), #"routes[0].experiment.control: unknown variant "C""#)
        assertError(doc(experiment: #"{ "srmThreshold": 1.5 }"#), "routes[0].experiment.srmThreshold: must be between 0 and 1")
        assertError(doc(experiment: #"{ "minUnits": 0 }"#), "routes[0].experiment.minUnits: must be")
        assertError(doc(experiment: #"{ "goals": [ { "name": "buy", "match": {} } ] }"#),
                    #"routes[0].experiment.goals[0].match: needs "method" or "pathPrefix""#)
        assertError(doc(experiment: #"{ "goals": [ { "name": "buy", "match": { "pathPrefix": "buy" } } ] }"#),
                    #"routes[0].experiment.goals[0].match.pathPrefix: must start with "/""#)
        assertError(doc(experiment: #"{ "goals": [ { "name": "buy", "match": { "method": "PO ST" } } ] }"#),
                    #"routes[0].experiment.goals[0].match.method: "PO ST" is not a method"#)
        assertError(doc(experiment: #"{ "goals": [ { "name": "buy", "match": { "method": "POST" }, "status": "2xy" } ] }"#),
                    #"routes[0].experiment.goals[0].status: must be a class ("2xx")"#)
        assertError(doc(experiment: #"{ "goals": [ { "name": "buy", "match": { "method": "POST" }, "status": "399-200" } ] }"#),
                    "routes[0].experiment.goals[0].status: must be a class")
        let twice = #"{ "goals": [ { "name": "buy", "match": { "method": "POST" } }, { "name": "buy", "match": { "method": "PUT" } } ] }"#
        assertError(doc(experiment: twice), #"routes[0].experiment.goals[1].name: duplicate goal "buy""#)
        let many = (0...16).map { #"{ "name": "g\#($0)", "match": { "method": "POST" } }"# }.joined(separator: ",")
        assertError(doc(experiment: "{ \"goals\": [\(many)] }"), "routes[0].experiment.goals: at most 16 goals, got 17")
        assertError(Doc.make(upstreams: Self.upstreams, routes: #"[{ "name": "shop", "upstream": "a", "experiment": {} }]"#),
                    #"routes[0].experiment: only allowed with "split""#)
    }

    func testMoreGoalsThanTheRouterCountsAreRefused() throws {
        let goals = (0..<16).map { #"{ "name": "g\#($0)", "match": { "method": "POST" } }"# }.joined(separator: ",")
        let routes = (0..<5).map { i in
            """
            { "name": "r\(i)", "match": { "pathPrefix": "/r\(i)" },
              "split": [ { "variant": "A", "upstream": "a", "weight": 50 }, { "variant": "B", "upstream": "b", "weight": 50 } ],
              "sticky": { "salt": "s\(i)" }, "experiment": { "goals": [\(goals)] } }
            """
        }.joined(separator: ",")
        let config = try XCTUnwrap(parse(Doc.make(upstreams: Self.upstreams, routes: "[\(routes)]"))?.config)
        XCTAssertThrowsError(try SnapshotBuilder.build(config, version: 1, registry: EndpointRegistry())) { error in
            XCTAssertEqual((error as? ConfigError)?.messages.first?.hasPrefix("routes[4].experiment.goals: the experiments have 80 goals"), true,
                           "\((error as? ConfigError)?.messages ?? [])")
        }
    }

    func testMaxSRMNeedsAnExperimentAndAPValue() {
        let noExperiment = """
            [{ "name": "shop", "split": [ { "variant": "A", "upstream": "a", "weight": 100 }, { "variant": "B", "upstream": "b", "weight": 0 } ],
               "rollout": { "variant": "B", "steps": [50], "gates": { "maxSRM": 0.001 } } }]
            """
        assertError(Doc.make(upstreams: Self.upstreams, routes: noExperiment),
                    #"routes[0].rollout.gates: "maxSRM" judges the route's experiment"#)
        assertError(doc(experiment: "{}", rollout: #"{ "variant": "B", "steps": [50], "gates": { "maxSRM": 2 } }"#),
                    "routes[0].rollout.gates.maxSRM: must be a p-value between 0 and 1")
    }

    func testAGoodExperimentReachesTheSnapshot() throws {
        let text = doc(experiment: """
            { "name": "checkout-v2", "control": "B", "exposures": "process",
              "goals": [ { "name": "buy", "match": { "methods": ["post", "PUT"], "pathPrefix": "/buy" }, "status": "200-399" },
                         { "name": "visit", "match": { "pathPrefix": "/" }, "status": "any" } ] }
            """)
        let config = try XCTUnwrap(parse(text)?.config, "\(errors(text))")
        guard case .split(let split) = config.routes[0].target, let e = split.experiment else { return XCTFail("no experiment") }
        XCTAssertEqual(e.name, "checkout-v2")
        XCTAssertEqual(e.control, "B")
        XCTAssertEqual(e.exposures, .process)
        XCTAssertEqual(e.goals.map(\.methods), [["POST", "PUT"], []])
        XCTAssertEqual(e.goals.map(\.statuses), [200...399, 100...599])
        // The default name is the route and the salt.
        let plain = try XCTUnwrap(parse(doc(experiment: "{}"))?.config)
        guard case .split(let s2) = plain.routes[0].target else { return XCTFail("no split") }
        XCTAssertEqual(s2.experiment?.name, "shop.shop")
        XCTAssertEqual(s2.experiment?.control, "A")
        // The unit key depends on the experiment's name and the salt, and is the same every time.
        let sticky = try XCTUnwrap(split.sticky)
        let k1 = SnapshotExperiments.experiment(e, sticky: sticky, variants: split.variants).unitKey
        let k2 = SnapshotExperiments.experiment(e, sticky: sticky, variants: split.variants).unitKey
        var renamed = e
        renamed.name = "other"
        XCTAssertEqual(k1, k2)
        XCTAssertNotEqual(k1, SnapshotExperiments.experiment(renamed, sticky: sticky, variants: split.variants).unitKey)
        XCTAssertEqual(SnapshotExperiments.experiment(e, sticky: sticky, variants: split.variants).control, 1)
    }
}
