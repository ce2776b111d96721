// The access log: one JSON object per exchange with the fields the issue lists; SIGUSR1 opens
// the file again after logrotate moved it, also after the drop to "user" (the file and the
// directory it makes are the service user's); a writer that cannot keep up (a FIFO nobody
// reads) loses lines, counted, while requests are answered as fast as ever.
import Foundation
import Glibc
import TestSupport
import XCTest

final class AccessLogTests: EndToEndTestCase {
    private func proxyJSON(upstream: String, dead: String, log: String, extra: String = "") -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "timeouts": { "connectMs": 1000 },
          "upstreams": {
            "app": { "endpoints": ["\(upstream)"] },
            "canary": { "endpoints": ["\(upstream)"] },
            "shadow": { "endpoints": ["\(upstream)"] },
            "dead": { "endpoints": ["\(dead)"] }
          },
          "routes": [
            { "name": "dead", "match": { "pathPrefix": "/dead" }, "upstream": "dead" },
            { "name": "web", "split": [ { "variant": "stable", "upstream": "app", "weight": 1 },
                                        { "variant": "canary", "upstream": "canary", "weight": 0 } ],
              "override": { "header": "X-Switchyard-Variant", "trustedSources": ["127.0.0.1/32"] },
              "mirror": [ { "upstream": "shadow", "percent": 100 } ] }
          ],
          "admin": { "address": "127.0.0.1:0" },
          "accessLog": { "path": "\(log)", "maxQueryBytes": 8 \(extra) }
        }
        """
    }

    /// The lines of the log file, each parsed as a JSON object.
    private func lines(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.isEmpty || text.hasSuffix("\n"), "whole lines only")
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestError("not a JSON object: \(line)")
            }
            return object
        }
    }

    private func waitForLines(_ path: String, count: Int) throws -> [[String: Any]] {
        var got: [[String: Any]] = []
        try waitUntil(timeout: 10, interval: 0.02) {
            got = try lines(path)
            return got.count >= count
        }
        return got
    }

    func testEachExchangeIsOneJSONLineWithItsFields() throws {
        let echo = try startEcho(name: "a")
        let log = try temporaryDirectory() + "/access.log"
        let proxy = try startProxy(json: proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(), log: log))
        let c = try connect(proxy)
        XCTAssertEqual(try c.exchange(get("/shop/items?page=2&sort=price-descending", ["X-Request-Id: req-42"])).status, 200)
        XCTAssertEqual(try c.exchange(get("/dead", ["X-Switchyard-Variant: canary"])).status, 502)
        let post = "POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello"
        XCTAssertEqual(try c.exchange(post).status, 200)

        let got = try waitForLines(log, count: 3)
        XCTAssertEqual(got.count, 3)
        let fields = ["time", "client", "method", "path", "status", "bytesIn", "bytesOut", "durationMs", "upstreamMs", "route",
                      "variant", "upstream", "color", "endpoint", "attempts", "mirror", "requestId", "traceId", "source"]
        for line in got { XCTAssertEqual(Set(line.keys), Set(fields), "\(line)") }

        let first = try XCTUnwrap(got.first { $0["path"] as? String != "/dead" && $0["method"] as? String == "GET" })
        let time = try XCTUnwrap(first["time"] as? String)
        XCTAssertNotNil(time.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression), time)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let when = try XCTUnwrap(formatter.date(from: time))
        XCTAssertLessThan(abs(when.timeIntervalSinceNow), 60)
        XCTAssertEqual(first["client"] as? String, "127.0.0.1")
        XCTAssertEqual(first["path"] as? String, "/shop/items?page=2&s", "the query is cut after maxQueryBytes")
        XCTAssertEqual(first["status"] as? Int, 200)
        XCTAssertEqual(first["route"] as? String, "web")
        XCTAssertEqual(first["variant"] as? String, "stable")
        XCTAssertEqual(first["upstream"] as? String, "app")
        XCTAssertTrue(first["color"] is NSNull)
        XCTAssertEqual(first["endpoint"] as? String, echo.endpoint)
        XCTAssertEqual(first["attempts"] as? Int, 1)
        XCTAssertEqual(first["mirror"] as? String, "sent")
        XCTAssertEqual(first["requestId"] as? String, "req-42", "the client's X-Request-Id")
        XCTAssertEqual(first["source"] as? String, "upstream")
        XCTAssertGreaterThan(first["bytesIn"] as? Int ?? 0, 60)
        XCTAssertGreaterThan(first["bytesOut"] as? Int ?? 0, 100)
        let total = try XCTUnwrap(first["durationMs"] as? Double)
        let upstream = try XCTUnwrap(first["upstreamMs"] as? Double)
        XCTAssertGreaterThan(total, 0)
        XCTAssertLessThanOrEqual(upstream, total)
        // Microsecond precision: three decimals.
        let raw = String(decoding: FileManager.default.contents(atPath: log)!, as: UTF8.self)
        XCTAssertNotNil(raw.range(of: #""durationMs":\d+\.\d{3},"#, options: .regularExpression))

        let dead = try XCTUnwrap(got.first { $0["path"] as? String == "/dead" })
        XCTAssertEqual(dead["status"] as? Int, 502)
        XCTAssertEqual(dead["source"] as? String, "proxy")
        XCTAssertEqual(dead["route"] as? String, "dead")
        XCTAssertEqual(dead["variant"] as? String, "default")
        XCTAssertTrue(dead["upstreamMs"] is NSNull)
        XCTAssertEqual((dead["requestId"] as? String)?.count, 16, "the proxy's own id")

        let upload = try XCTUnwrap(got.first { $0["method"] as? String == "POST" })
        XCTAssertEqual(upload["path"] as? String, "/upload")
        XCTAssertEqual(upload["bytesIn"] as? Int, post.utf8.count, "head and body")
    }

    func testSIGUSR1ReopensTheFileAfterItWasMoved() throws {
        let echo = try startEcho(name: "a")
        let dir = try temporaryDirectory()
        let log = dir + "/access.log"
        let proxy = try startProxy(json: proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(), log: log))
        let c = try connect(proxy)
        XCTAssertEqual(try c.exchange(get("/before")).status, 200)
        XCTAssertEqual(try waitForLines(log, count: 1).count, 1)

        XCTAssertEqual(rename(log, dir + "/access.log.1"), 0)
        XCTAssertEqual(try c.exchange(get("/moved")).status, 200)
        // Until the signal, lines go to the moved file (the descriptor the proxy holds).
        XCTAssertEqual(try waitForLines(dir + "/access.log.1", count: 2).count, 2)

        proxy.process.send(signal: SIGUSR1)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reopened the access log"))
        XCTAssertEqual(try c.exchange(get("/after")).status, 200)
        let fresh = try waitForLines(log, count: 1)
        XCTAssertEqual(fresh.map { $0["path"] as? String }, ["/after"])
        XCTAssertEqual(try lines(dir + "/access.log.1").count, 2)
    }

    /// Started as root with "user": the access log is opened as root, then every reopen runs as
    /// the service user. `directory` holds the log; the test's own directory is made traversable
    /// (its files stay root's).
    private func startDroppingProxy(log: String, echo: EchoUpstream) throws -> RunningProxy {
        XCTAssertEqual(chmod(try temporaryDirectory(), 0o711), 0)
        let text = proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(), log: log)
            .replacingOccurrences(of: "\"listeners\"", with: "\"user\": \"nobody\",\n  \"listeners\"")
        let proxy = try startProxy(json: text)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "running as nobody"), proxy.process.stderr)
        return proxy
    }

    func testAfterTheDropSIGUSR1MakesTheNewFileAsTheServiceUser() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let echo = try startEcho(name: "a")
        // A directory that does not exist yet: Switchyard makes it for the service user.
        let dir = try temporaryDirectory() + "/logs"
        let log = dir + "/access.log"
        let proxy = try startDroppingProxy(log: log, echo: echo)
        var st = stat()
        XCTAssertEqual(stat(dir, &st), 0)
        XCTAssertEqual(st.st_uid, 65534, "the log directory is the service user's")
        XCTAssertEqual(stat(log, &st), 0)
        XCTAssertEqual(st.st_uid, 65534, "the log file is the service user's")
        XCTAssertFalse(proxy.process.stderr.contains("cannot create files in"), proxy.process.stderr)
        let c = try connect(proxy)
        XCTAssertEqual(try c.exchange(get("/before")).status, 200)
        XCTAssertEqual(try waitForLines(log, count: 1).count, 1)

        XCTAssertEqual(rename(log, log + ".1"), 0)
        proxy.process.send(signal: SIGUSR1)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reopened the access log"), proxy.process.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: log), "a new file at the path")
        XCTAssertEqual(try c.exchange(get("/after")).status, 200)
        XCTAssertEqual(try waitForLines(log, count: 1).map { $0["path"] as? String }, ["/after"])
        XCTAssertEqual(try lines(log + ".1").map { $0["path"] as? String }, ["/before"])
    }

    func testAfterTheDropAReopenThatFailsSaysWhyAndKeepsTheOldFile() throws {
        try XCTSkipUnless(geteuid() == 0, "the privilege drop needs root")
        let echo = try startEcho(name: "a")
        // The log in a directory only root may write: named at start, and the reopen fails.
        let dir = try temporaryDirectory()
        let log = dir + "/access.log"
        let proxy = try startDroppingProxy(log: log, echo: echo)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "accessLog.path: nobody cannot create files in \(dir)"),
                        proxy.process.stderr)
        let c = try connect(proxy)
        XCTAssertEqual(try c.exchange(get("/before")).status, 200)
        XCTAssertEqual(try waitForLines(log, count: 1).count, 1)

        XCTAssertEqual(rename(log, dir + "/access.log.1"), 0)
        proxy.process.send(signal: SIGUSR1)
        let line = proxy.process.waitForStderrLine(containing: "cannot reopen the access log \(log)")
        XCTAssertTrue(line?.contains("Permission denied") == true, proxy.process.stderr)
        XCTAssertEqual(try c.exchange(get("/after")).status, 200)
        XCTAssertEqual(try waitForLines(dir + "/access.log.1", count: 2).map { $0["path"] as? String }, ["/before", "/after"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: log))
    }

    func testAWriterThatFallsBehindDropsLinesAndCountsThem() throws {
        let echo = try startEcho(name: "a")
        let fifo = try temporaryDirectory() + "/access.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        // Opened for reading (so the proxy's open for writing does not wait) and never read: once
        // the pipe's buffer is full the writer thread blocks in write().
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        XCTAssertGreaterThanOrEqual(reader, 0)
        defer { Glibc.close(reader) }
        let proxy = try startProxy(json: proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(), log: fifo))
        let adminPort = try adminPort(proxy)
        // Long paths make long lines: the pipe (64 KiB) and every chunk (8 x 64 KiB per worker)
        // fill after a few thousand requests.
        let path = "/" + String(repeating: "p", count: 2000)
        let c = try connect(proxy)
        var answered = 0
        let start = Date()
        var dropped = 0
        while dropped == 0 && Date().timeIntervalSince(start) < 60 {
            for _ in 0..<100 {
                XCTAssertEqual(try c.exchange(get(path)).status, 200)
                answered += 1
            }
            dropped = try metrics(adminPort: adminPort)["switchyard_access_log_dropped_total"]
        }
        XCTAssertGreaterThan(dropped, 0, "after \(answered) requests")
        // Requests do not wait for the log: more are answered while it stays blocked.
        for _ in 0..<200 { XCTAssertEqual(try c.exchange(get(path)).status, 200) }
        let after = try metrics(adminPort: adminPort)["switchyard_access_log_dropped_total"]
        XCTAssertGreaterThanOrEqual(after, dropped + 150, "each unlogged request is counted")
        // The proxy still stops promptly although its writer is stuck.
        proxy.process.send(signal: SIGTERM)
        XCTAssertEqual(proxy.process.waitForExit(timeout: 15), .exited(0))
    }

    func testSamplingZeroLogsNothingAndAnUnopenableFileIsAStartUpError() throws {
        let echo = try startEcho(name: "a")
        let log = try temporaryDirectory() + "/access.log"
        let proxy = try startProxy(json: proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(), log: log,
                                                   extra: ", \"sample\": 0"))
        let c = try connect(proxy)
        for _ in 0..<20 { XCTAssertEqual(try c.exchange(get("/")).status, 200) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: log), "opened at start")
        XCTAssertEqual(try lines(log).count, 0)

        let bad = try writeFile("bad.json", proxyJSON(upstream: echo.endpoint, dead: try refusingEndpoint(),
                                                      log: "/nonexistent-dir/access.log"))
        let run = try ChildProcess.run(switchyard: ["run", "--config", bad])
        XCTAssertEqual(run.termination, .exited(1))
        XCTAssertTrue(run.stderr.contains("cannot open the access log /nonexistent-dir/access.log"), run.stderr)
    }
}
