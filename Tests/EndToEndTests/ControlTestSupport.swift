// Helpers for the control-socket end-to-end tests: a config with a blue/green upstream and a
// control section, and `switchyard ctl` runs (the line client is in TestSupport).
import Foundation
import Glibc
import TestSupport
import XCTest

extension EndToEndTestCase {
    /// A proxy in front of `blue`/`green` (the colors of `checkout`) and `canary`, route `shop`
    /// splitting stable (checkout) / canary, with a control socket and state file in the
    /// test's directory.
    func controlConfig(blue: EchoUpstream, green: EchoUpstream, canary: EchoUpstream, live: String = "blue",
                       stable: Int = 100, canaryWeight: Int = 0, workers: Int = 2, warmup: String? = nil) throws -> String {
        let dir = try temporaryDirectory()
        let warm = warmup.map { ", \"warmup\": { \($0) }" } ?? ""
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": \(workers),
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": {
            "checkout": { "blue": { "endpoints": ["\(blue.endpoint)"] }, "green": { "endpoints": ["\(green.endpoint)"] },
                          "live": "\(live)"\(warm) },
            "canary": { "endpoints": ["\(canary.endpoint)"] }
          },
          "routes": [
            { "name": "shop", "split": [ { "variant": "stable", "upstream": "checkout", "weight": \(stable) },
                                         { "variant": "canary", "upstream": "canary", "weight": \(canaryWeight) } ],
              "override": { "trustedSources": ["0.0.0.0/0", "::/0"] } }
          ],
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
        }
        """
    }

    func controlSocket() throws -> String { try temporaryDirectory() + "/control.sock" }

    /// Runs `switchyard ctl --socket SOCKET ARGS...`.
    func ctl(_ args: [String]) throws -> (termination: Termination, stdout: String, stderr: String) {
        try ChildProcess.run(switchyard: ["ctl", "--socket", try controlSocket()] + args)
    }

    /// Who answered a GET through the proxy (the echo's name).
    func servedBy(_ proxy: RunningProxy, _ extra: [String] = []) throws -> String? {
        let r = try connect(proxy).exchange(get("/", extra))
        return r.status == 200 ? r.header("X-Echo-Name") : "status \(r.status)"
    }
}
