// The error log (stderr): every line timestamped; answers the proxy makes itself with 502, 503
// or 504 logged with route, upstream, endpoint and reason, at most once a second per reason;
// reloads from SIGHUP and from ctl logged once each way, and counted; control changes and
// shutdown logged. Proxy-made answers name the variant like proxied ones.
import Foundation
import Glibc
import TestSupport
import XCTest

final class ErrorLogTests: EndToEndTestCase {
    private func json(dead: String, live: String, socket: String, weightLine: String = "") -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 1,
          "timeouts": { "connectMs": 1000 },
          "upstreams": { "dead": { "endpoints": ["\(dead)"], "outlierDetection": false }, "live": { "endpoints": ["\(live)"] } },
          "routes": [ { "name": "shop", "split": [ { "variant": "broken", "upstream": "dead", "weight": 1 },
                                                   { "variant": "fine", "upstream": "live", "weight": 0 } ] } ],
          "admin": { "address": "127.0.0.1:0" },
          "control": { "socket": "\(socket)" }\(weightLine)
        }
        """
    }

    private func count(_ text: String, in stderr: String) -> Int { stderr.components(separatedBy: text).count - 1 }

    func testProxyMade502IsLoggedWithItsReasonRateLimitedAndNamesTheVariant() throws {
        let echo = try startEcho(name: "live")
        let dead = try refusingEndpoint()
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startProxy(json: json(dead: dead, live: echo.endpoint, socket: socket))
        let c = try connect(proxy)
        let started = Date()   // the rate limit's second starts after this
        let r = try c.exchange(get("/"))
        XCTAssertEqual(r.status, 502)
        XCTAssertEqual(r.header("X-Switchyard-Variant"), "broken", "a proxy-made answer names the variant")
        let line = try XCTUnwrap(proxy.process.waitForStderrLine(containing: "answered 502"))
        for part in ["(upstream unreachable)", "route=shop", "variant=broken", "upstream=dead", "endpoint=\(dead)", "request="] {
            XCTAssertTrue(line.contains(part), "\(part) in \(line)")
        }

        // More of the same within the second: not logged, then counted in the next line. (On a
        // loaded machine the 20 may take longer than the second: then a line each second.)
        for _ in 0..<20 { XCTAssertEqual(try c.exchange(get("/")).status, 502) }
        let quick = Date().timeIntervalSince(started) < 0.8
        let logged = count("answered 502", in: proxy.process.stderr)
        XCTAssertLessThanOrEqual(logged, 2 + Int(Date().timeIntervalSince(started)))
        if quick { XCTAssertEqual(logged, 1) }
        var next: String?
        waitUntil(timeout: 10, interval: 0.05) {
            _ = try? c.exchange(get("/"))
            next = proxy.process.stderr.split(separator: "\n").first { $0.contains("more for this reason") }.map(String.init)
            return next != nil
        }
        let more = try XCTUnwrap(next, proxy.process.stderr)
        XCTAssertTrue(more.contains("answered 502 (upstream unreachable)"), more)
        let pattern = quick ? #"\(and (2\d|[3-9]\d|\d{3,}) more"# : #"\(and \d+ more"#
        XCTAssertNotNil(more.range(of: pattern, options: .regularExpression), "the answers left out: \(more)")

        // Every line of the error log starts with its time.
        for l in proxy.process.stderr.split(separator: "\n") {
            XCTAssertNotNil(l.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z switchyard: "#, options: .regularExpression), String(l))
        }
    }

    func testReloadsAreLoggedOnceAndCountedAndShutdownIsLogged() throws {
        let echo = try startEcho(name: "live")
        let dead = try refusingEndpoint()
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startProxy(json: json(dead: dead, live: echo.endpoint, socket: socket))
        let adminPort = try adminPort(proxy)

        // A refused reload by SIGHUP: one line, with the reason.
        let good = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
        try Data(good.replacingOccurrences(of: "\"weight\": 0", with: "\"weight\": -1").utf8)
            .write(to: URL(fileURLWithPath: proxy.configPath))
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reload refused"))
        // Then an applied one by ctl: both are on the log in order, so the refusal's lines are
        // all there by now.
        try Data(good.utf8).write(to: URL(fileURLWithPath: proxy.configPath))
        let reload = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "reload"])
        XCTAssertEqual(reload.termination, .exited(0), reload.stderr)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "(from ctl reload)"))
        let stderr = proxy.process.stderr
        XCTAssertEqual(count("reload refused", in: stderr), 1, stderr)
        XCTAssertEqual(count("weight", in: stderr), 1, "the reason once, not repeated under it: \(stderr)")
        XCTAssertTrue(stderr.contains("(from SIGHUP)"), stderr)

        // Counted.
        let m = try Exposition(try metrics(adminPort: adminPort).text)
        XCTAssertEqual(m.value("switchyard_config_reloads_total", ["result": "applied"]), 1)
        XCTAssertEqual(m.value("switchyard_config_reloads_total", ["result": "refused"]), 1)

        // A control change is logged.
        let set = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "set", "weights", "shop", "broken=0", "fine=1"])
        XCTAssertEqual(set.termination, .exited(0), set.stderr)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "weights shop"))

        proxy.process.send(signal: SIGTERM)
        XCTAssertEqual(proxy.process.waitForExit(), .exited(0))
        XCTAssertTrue(proxy.process.stderr.contains("SIGTERM: shutting down"), proxy.process.stderr)
        XCTAssertTrue(proxy.process.stderr.contains("switchyard: stopped"), proxy.process.stderr)
    }
}
