// "watchConfig": true under a kubelet-style ConfigMap volume. A valid update (the `..data`
// symlink swapped to a new directory) changes routing on the running proxy with no failed
// request; an invalid one changes nothing, is logged once and counted as refused, and the next
// valid one applies.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ConfigWatchTests: EndToEndTestCase {
    private func config(_ endpoint: String) -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "watchConfig": true,
          "admin": { "address": "127.0.0.1:0" },
          "upstreams": { "app": { "endpoints": ["\(endpoint)"] } },
          "routes": [ { "name": "r", "upstream": "app" } ]
        }
        """
    }

    func testASymlinkSwapChangesRoutingUnderLoadAndABadOneChangesNothing() throws {
        let one = try startEcho(name: "one")
        let two = try startEcho(name: "two")
        let three = try startEcho(name: "three")
        var volume = try KubeletVolume(dir: try temporaryDirectory() + "/config", name: "switchyard.json", text: config(one.endpoint))
        let proxy = try startProxy(configPath: volume.path)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "watching \(volume.path) for changes"))
        let admin = try adminPort(proxy)
        XCTAssertEqual(try servedBy(proxy), "one")

        let load = BackgroundLoad(ports: [proxy.port])
        XCTAssertTrue(load.waitForProgress(), "the load runs")
        let swapped = Date()
        try volume.update(config(two.endpoint))
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.01) { (try? servedBy(proxy)) == "two" }, proxy.process.stderr)
        let seconds = Date().timeIntervalSince(swapped)
        XCTAssertTrue(load.waitForProgress(), "the load goes on after the reload")

        // An invalid update: refused, the old config keeps serving.
        try volume.update("{ \"listeners\": [ broken")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reload refused"), proxy.process.stderr)
        XCTAssertEqual(try servedBy(proxy), "two")
        XCTAssertTrue(load.waitForProgress(), "traffic carries on")

        // The next valid update applies; by then many polls have passed over the bad file.
        try volume.update(config(three.endpoint))
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.01) { (try? servedBy(proxy)) == "three" }, proxy.process.stderr)
        let result = load.stop()
        XCTAssertEqual(result.failures, [], "no request failed across three updates")
        XCTAssertGreaterThan(result.ok, 0)

        XCTAssertEqual(stderrLines(proxy, containing: "reload refused"), 1, "the bad file is logged once: \(proxy.process.stderr)")
        let metrics = try self.metrics(adminPort: admin)
        XCTAssertEqual(metrics[#"switchyard_config_reloads_total{result="applied"}"#], 2, metrics.text)
        XCTAssertEqual(metrics[#"switchyard_config_reloads_total{result="refused"}"#], 1, metrics.text)
        print("ConfigWatchTests: symlink swap to routing change in \(String(format: "%.2f", seconds)) s, "
              + "\(result.ok) requests, \(result.failures.count) failed")
    }

    func testWithoutWatchConfigAChangeWaitsForAReload() throws {
        let one = try startEcho(name: "one")
        let two = try startEcho(name: "two")
        let text = config(one.endpoint).replacingOccurrences(of: "\"watchConfig\": true", with: "\"watchConfig\": false")
        var volume = try KubeletVolume(dir: try temporaryDirectory() + "/config", name: "switchyard.json", text: text)
        let proxy = try startProxy(configPath: volume.path)
        try volume.update(text.replacingOccurrences(of: one.endpoint, with: two.endpoint))
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded"))
        XCTAssertEqual(try servedBy(proxy), "two")
        XCTAssertEqual(stderrLines(proxy, containing: "config file changed"), 0, "nothing watched the file")
    }
}
