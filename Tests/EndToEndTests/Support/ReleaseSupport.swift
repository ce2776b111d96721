// What the release tests share: a next version that keeps every request head it gets, and what
// they read back (a blue/green upstream's live color and a split's weights through the control
// socket, and who answered a run of GETs through the proxy).
import Foundation
import TestSupport
import XCTest

extension EndToEndTestCase {
    /// A proxy config with one blue/green upstream, `checkout` (blue live, at the two endpoints
    /// given), two workers, short timeouts, a control socket and a state file; `routes` is the
    /// routes array.
    func checkoutConfig(blue: String, green: String, routes: String) throws -> String {
        let dir = try temporaryDirectory()
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": { "checkout": { "blue": { "endpoints": ["\(blue)"] },
                                       "green": { "endpoints": ["\(green)"] }, "live": "blue" } },
          "routes": \(routes),
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
        }
        """
    }

    /// A version naming itself `name` (X-Echo-Name and X-Name) that answers 200, or 500 to
    /// every `failEvery`-th request (0: never), and keeps every request head it got.
    func startRecording(name: String, failEvery: Int = 0) throws -> (RawServer, Locked<[String]>) {
        let heads = Locked<[String]>([])
        let server = try startServer { conn, _ in
            while let head = conn.readHead() {
                var n = 0
                heads.mutate {
                    $0.append(head)
                    n = $0.count
                }
                let status = failEvery > 0 && n % failEvery == 0 ? 500 : 200
                _ = conn.send("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Internal Server Error")\r\n"
                              + "Content-Length: \(name.utf8.count)\r\nX-Echo-Name: \(name)\r\nX-Name: \(name)\r\n\r\n\(name)")
            }
        }
        return (server, heads)
    }

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
