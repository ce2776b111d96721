// What the release tests read back: a blue/green upstream's live color and a split's weights
// through the control socket, and who answered a run of GETs through the proxy.
import Foundation
import TestSupport
import XCTest

extension EndToEndTestCase {
    /// The live color of the blue/green upstream `upstream`, as `show upstreams` gives it.
    func live(_ control: ControlLineClient, upstream: String = "checkout") throws -> String? {
        let upstreams = try control.command("show upstreams")["upstreams"] as? [[String: Any]]
        return upstreams?.first { $0["upstream"] as? String == upstream }?["live"] as? String
    }

    /// The weights of `route`'s variants by name, as `show routes` gives them.
    func weights(_ control: ControlLineClient, route: String = "shop") throws -> [String: Int] {
        let variants = try control.command("show routes")["variants"] as? [[String: Any]] ?? []
        var out: [String: Int] = [:]
        for v in variants where v["route"] as? String == route { if let n = v["variant"] as? String { out[n] = v["weight"] as? Int } }
        return out
    }

    /// GETs of "/" on keep-alive connections, ten at a time, until `done` holds (for up to 30 s);
    /// the value of `header` in every answer, in order.
    func answers(_ proxy: RunningProxy, header: String, until done: () throws -> Bool) throws -> [String] {
        var seen: [String] = []
        var client = try connect(proxy)
        XCTAssertTrue(try waitUntil(timeout: 30) {
            for _ in 0..<10 {
                do { seen.append(try client.exchange(get("/")).header(header) ?? "?") } catch { client = try connect(proxy) }
            }
            return try done()
        })
        return seen
    }
}
