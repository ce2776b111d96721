// The fleet store in process against a real etcd, where a test can hold the watch back: a
// commit whose keys another writer changed since this instance read them is refused, never an
// overwrite; a watch that starts from a compacted revision resyncs with a full read.
import Config
import Etcd
@testable import Fleet
import Foundation
import Routing
@testable import Runtime
import TestSupport
import XCTest

final class FleetStoreTests: XCTestCase {
    private func cluster() throws -> EtcdCluster {
        guard EtcdCluster.available else { throw TestError("etcd is not installed (apt-get install etcd-server etcd-client)") }
        let c = try EtcdCluster()
        addTeardownBlock { c.stop() }
        return c
    }

    private func state(_ etcd: EtcdCluster, lines: Locked<[String]>) throws -> RuntimeState {
        let text = #"""
        { "listeners": [{"address": "127.0.0.1:0"}],
          "upstreams": { "stable": {"endpoints": ["127.0.0.1:9"]}, "canary": {"endpoints": ["127.0.0.1:10"]} },
          "routes": [ { "name": "api", "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                                                   { "variant": "canary", "upstream": "canary", "weight": 0 } ] } ],
          "fleet": { "etcd": { "endpoints": ["\#(etcd.clientURLs[0])"], "prefix": "/p/" }, "instance": "t" } }
        """#
        let loaded = try ConfigLoader.parse(data: Data(text.utf8), file: "t.json")
        return try RuntimeState(loaded: loaded, source: .file("t.json"), log: { line in lines.mutate { $0.append(line) } })
    }

    private func weights(_ state: RuntimeState) -> [String: Int] {
        state.queue.sync { Dictionary(uniqueKeysWithValues: state.config.routes[0].split!.variants.map { ($0.name, $0.weight) }) }
    }

    private func setWeights(_ stable: Int, _ canary: Int) -> RuntimeChange {
        .weights(route: "api", weights: [.init(variant: "stable", weight: stable), .init(variant: "canary", weight: canary)])
    }

    func testACommitOverAChangeItHasNotSeenIsRefused() throws {
        let etcd = try cluster()
        let lines = Locked<[String]>([])
        let state = try state(etcd, lines: lines)
        let store = FleetStore(settings: state.config.fleet!, state: state, version: "test")
        store.readInitial(timeout: 5)
        // The watch is not started: this instance keeps the view it read.
        let other = EtcdClient(EtcdClient.Settings(endpoints: [HTTPURL(etcd.clientURLs[0])!]))
        try other.put("/p/state/weights/api", Array(#"{"canary":50,"stable":50}"#.utf8))
        XCTAssertThrowsError(try state.queue.sync { try state.commit([setWeights(10, 90)]) }) { error in
            XCTAssertTrue("\(error)".contains("changed meanwhile"), "\(error)")
            XCTAssertTrue("\(error)".contains("weights/api"), "\(error)")
        }
        XCTAssertEqual(String(decoding: try other.range("/p/state/weights/api", prefix: false).kvs[0].value, as: UTF8.self),
                       #"{"canary":50,"stable":50}"#, "the other writer's value stands")
        // A change to another object does not conflict with it.
        let other2 = try state.queue.sync { try state.commit([.mirror(route: "api", upstream: "canary", percent: 5)]) }
        XCTAssertNotNil(other2.revision)
        store.stop()
    }

    func testAWatchFromACompactedRevisionResyncs() throws {
        let etcd = try cluster()
        let lines = Locked<[String]>([])
        let state = try state(etcd, lines: lines)
        let store = FleetStore(settings: state.config.fleet!, state: state, version: "test")
        store.readInitial(timeout: 5)
        XCTAssertEqual(weights(state), ["stable": 100, "canary": 0])
        let other = EtcdClient(EtcdClient.Settings(endpoints: [HTTPURL(etcd.clientURLs[0])!]))
        for w in [10, 20, 30] { try other.put("/p/state/weights/api", Array(#"{"canary":\#(w),"stable":\#(100 - w)}"#.utf8)) }
        let last = try other.put("/other", [1])
        XCTAssertNotNil(EtcdCluster.post(port: etcd.members[0].clientPort, path: "/v3/kv/compaction", body: #"{"revision":"\#(last)","physical":true}"#))
        // The watch resumes after the revision read at start, which is compacted away now.
        store.start(listeners: [])
        defer { store.stop() }
        XCTAssertTrue(waitUntil(timeout: 10) { self.weights(state) == ["stable": 70, "canary": 30] }, "\(weights(state))")
        XCTAssertTrue(lines.value.contains { $0.contains("compacted") }, "\(lines.value)")
    }
}
