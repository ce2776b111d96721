// Shadow mirroring through the real proxy: copies arrive marked `X-Switchyard-Shadow: 1` (with
// the Host suffix), only for the mirror's methods and bodies up to maxBodyBytes, and a slow,
// dead or silent shadow changes nothing for the client: not the status, not the latency, and
// not the proxy's memory.
import Foundation
import Glibc
import TestSupport
import XCTest

final class MirrorTests: EndToEndTestCase {
    /// The primary echo `app` and a proxy whose main route copies to `shadow` (an endpoint
    /// string) with `mirror` (the mirror object's members besides "upstream"). Paths under
    /// /control/ go to the same primary without a copy: the latency to compare against. The
    /// admin listener's counters tell when the proxy has finished with every copy.
    private func startMirrored(shadow: String, mirror: String, shadowUpstream: String? = nil) throws -> RunningProxy {
        let app = try startEcho(name: "app")
        let control = #"{ "name": "control", "match": { "pathPrefix": "/control/" }, "upstream": "app" }"#
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", \#(mirror) } ] }"#
        return try startProxy(json: routingConfig(
            upstreams: [("app", pool(app.endpoint)), ("shadow", shadowUpstream ?? pool(shadow))], routes: [control, route],
            admin: true))
    }

    private func post(_ path: String, bytes: Int) -> String {
        "POST \(path) HTTP/1.1\r\nHost: example.test\r\nContent-Length: \(bytes)\r\n\r\n" + String(repeating: "b", count: bytes)
    }

    private func chunkedPost(_ path: String, chunks: [Int]) -> String {
        var s = "POST \(path) HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        for n in chunks { s += String(n, radix: 16) + "\r\n" + String(repeating: "c", count: n) + "\r\n" }
        return s + "0\r\n\r\n"
    }

    /// Sends `count` mirrored requests one after another on one connection, each followed by
    /// one on the unmirrored /control/ route; every answer must be a 200 from the primary.
    /// Returns each exchange's duration in milliseconds, for both kinds.
    private func timedSequential(_ proxy: RunningProxy, _ count: Int, file: StaticString = #filePath,
                                 line: UInt = #line) throws -> (mirrored: [Double], control: [Double]) {
        let client = try connect(proxy)
        var mirrored: [Double] = []
        var control: [Double] = []
        var failures = 0
        for i in 0..<count {
            for path in ["/item/\(i)", "/control/\(i)"] {
                let started = DispatchTime.now().uptimeNanoseconds
                let r = try client.exchange(get(path + "?bytes=16"))
                let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
                if path.hasPrefix("/item/") { mirrored.append(ms) } else { control.append(ms) }
                if r.status != 200 || r.header("X-Echo-Name") != "app" || r.bodyCount != 16 { failures += 1 }
            }
        }
        XCTAssertEqual(failures, 0, "requests not answered 200 by the primary", file: file, line: line)
        return (mirrored, control)
    }

    /// The mirrored requests' p99 is within 100 ms of the unmirrored ones' measured alongside
    /// them: a busy machine slows both alike, while a primary that waited for its copy would
    /// take the shadow's time on top (200 ms for the slow shadow, up to connectMs for others).
    private func assertNotDelayed(_ durations: (mirrored: [Double], control: [Double]), _ what: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let mirrored = percentile(durations.mirrored, 99)
        let control = percentile(durations.control, 99)
        XCTAssertLessThan(mirrored, control + 100, "p99 in ms \(what): \(mirrored) mirrored, \(control) without a mirror",
                          file: file, line: line)
    }

    func testCopiesAreMarkedAndCarryTheHostSuffix() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100, "hostSuffix": ".shadow""#)
        let client = try connect(proxy)
        let r = try client.exchange(get("/a/b?x=1", host: "shop.example.test:8080", ["X-Trace: t-1"]))
        XCTAssertEqual(r.status, 200)
        let primary = try r.echo()
        XCTAssertNil(primary.header("X-Switchyard-Shadow"), "the primary is not marked")
        XCTAssertEqual(primary.header("Host"), "shop.example.test:8080", "the primary keeps its Host")

        XCTAssertTrue(shadow.waitFor { $0.count == 1 }, "one copy arrives")
        let copy = try XCTUnwrap(shadow.requests.first)
        XCTAssertEqual(copy.requestLine, "GET /a/b?x=1 HTTP/1.1")
        XCTAssertEqual(copy.header("X-Switchyard-Shadow"), "1")
        XCTAssertEqual(copy.header("Host"), "shop.example.test.shadow:8080", "the suffix goes on the host, before the port")
        XCTAssertEqual(copy.header("X-Trace"), "t-1", "end-to-end headers are copied")

        // Every request is copied (100%), on the same keep-alive connection too.
        for i in 0..<9 { XCTAssertEqual(try client.exchange(get("/n/\(i)")).status, 200) }
        XCTAssertTrue(shadow.waitFor { $0.count == 10 }, "got \(shadow.requests.count) copies")
        XCTAssertTrue(shadow.requests.allSatisfy { $0.header("X-Switchyard-Shadow") == "1" })
    }

    func testClientCannotForgeTheShadowMark() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100"#)
        let r = try connect(proxy).exchange(get("/pay", ["X-Switchyard-Shadow: 1", "x-switchyard-shadow: yes"]))
        XCTAssertEqual(try r.echo().headers(named: "X-Switchyard-Shadow"), [],
                       "a primary request never looks like a shadow copy to its upstream")
        XCTAssertTrue(shadow.waitFor { $0.count == 1 })
        XCTAssertEqual(shadow.requests.first?.headers(named: "X-Switchyard-Shadow"), ["1"], "exactly the proxy's mark")
    }

    func testDefaultMethodsCopyReadsButNotPost() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100"#)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        let posted = try client.exchange(post("/orders", bytes: 10))
        XCTAssertEqual(posted.status, 200)
        XCTAssertEqual(try posted.echo().bodyBytes, 10)
        XCTAssertEqual(try client.exchange("PUT /orders/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").status, 200)
        XCTAssertEqual(try client.exchange("HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n", method: "HEAD").status, 200)
        XCTAssertEqual(try client.exchange("OPTIONS /options HTTP/1.1\r\nHost: a\r\n\r\n").status, 200)
        XCTAssertEqual(try client.exchange(get("/marker")).status, 200)
        // A copy starts before its primary is forwarded: with the marker answered, the count
        // of copies sent is final, and a POST or PUT copy would be in it.
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m.mirrorSent, 3, "copies of HEAD, OPTIONS and GET only: \(m.text)")
        XCTAssertTrue(shadow.waitFor { $0.count == m.mirrorSent }, "got \(shadow.requests.map(\.requestLine))")
        XCTAssertEqual(Set(shadow.requests.map(\.method)), ["HEAD", "OPTIONS", "GET"])
    }

    func testBodiesOverMaxBodyBytesAreNotMirrored() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100, "methods": ["*"], "maxBodyBytes": 1024"#)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        let requests: [(String, Int)] = [
            (post("/small", bytes: 100), 100),
            (post("/limit", bytes: 1024), 1024),
            (post("/big", bytes: 5000), 5000),
            (chunkedPost("/chunked-small", chunks: [100, 200]), 300),
            (chunkedPost("/chunked-big", chunks: [600, 600, 600]), 1800),
            (post("/empty", bytes: 0), 0),
        ]
        for (request, bytes) in requests {
            let r = try client.exchange(request)
            XCTAssertEqual(r.status, 200, "the primary is served whatever happens to the copy")
            XCTAssertEqual(try r.echo().bodyBytes, bytes)
        }
        XCTAssertEqual(try client.exchange(get("/marker")).status, 200)
        // One outcome per mirrored request (the six posts and the marker): then no copy is
        // still on its way.
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= requests.count + 1 }
        XCTAssertEqual(m.mirrorOutcomes, requests.count + 1, m.text)
        XCTAssertEqual(m["switchyard_mirror_skipped_body_total"], 2, "/big and /chunked-big: \(m.text)")
        let copied = Dictionary(shadow.requests.map { (String($0.requestLine.split(separator: " ")[1]), $0.bodyBytes) },
                                uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(copied, ["/small": 100, "/limit": 1024, "/chunked-small": 300, "/empty": 0, "/marker": 0],
                       "whole copies of bodies up to maxBodyBytes, nothing of larger ones")
    }

    func testLargeBodiesUnderTheLimitAreCopiedWhole() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100, "methods": ["POST"]"#)
        let client = try connect(proxy)
        let size = 512 * 1024
        for request in [post("/large", bytes: size), chunkedPost("/large-chunked", chunks: Array(repeating: 64 * 1024, count: 8))] {
            let r = try client.exchange(request)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(try r.echo().bodyBytes, size)
        }
        XCTAssertTrue(shadow.waitFor { $0.count == 2 }, "got \(shadow.requests.map(\.requestLine))")
        XCTAssertEqual(shadow.requests.map(\.bodyBytes), [size, size], "the default maxBodyBytes is 1 MiB")
    }

    func testCopyCarriesTheRewrittenPath() throws {
        let shadow = try startRecordingServer()
        let app = try startEcho(name: "app")
        let route = """
            { "name": "api", "match": { "pathPrefix": "/api" }, "rewrite": { "stripPrefix": "/api" }, "upstream": "app",
              "mirror": [ { "upstream": "shadow", "percent": 100 } ] }
            """
        let proxy = try startProxy(json: routingConfig(upstreams: [("app", pool(app.endpoint)), ("shadow", pool(shadow.endpoint))],
                                                       routes: [route]))
        let r = try connect(proxy).exchange(get("/api/users?id=7"))
        XCTAssertEqual(try r.echo().target, "/users?id=7")
        XCTAssertTrue(shadow.waitFor { $0.count == 1 })
        XCTAssertEqual(shadow.requests.first?.requestLine, "GET /users?id=7 HTTP/1.1", "the copy is the request the upstream sees")
    }

    func testPipelinedRequestsAreEachCopied() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100, "methods": ["*"]"#)
        let client = try connect(proxy)
        try client.send(get("/p/1") + post("/p/2", bytes: 300) + chunkedPost("/p/3", chunks: [10, 20]) + get("/p/4"))
        for _ in 0..<4 { XCTAssertEqual(try client.readResponse().status, 200) }
        XCTAssertTrue(shadow.waitFor { $0.count == 4 }, "got \(shadow.requests.map(\.requestLine))")
        let copies = Dictionary(shadow.requests.map { (String($0.requestLine.split(separator: " ")[1]), $0.bodyBytes) },
                                uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(copies, ["/p/1": 0, "/p/2": 300, "/p/3": 30, "/p/4": 0])
    }

    func testShadowAnsweringBeforeTheBodyEndsGetsNoFurtherCopyOnThatConnection() throws {
        let shadow = try startRecordingServer(early: true)
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 100, "methods": ["*"]"#)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        // Half the body, a pause in which the shadow refuses the copy, then the rest.
        try client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n" + String(repeating: "u", count: 1024))
        XCTAssertEqual(try waitForMetrics(adminPort: admin) { $0.mirrorCompleted >= 1 }.mirrorCompleted, 1,
                       "the proxy read the shadow's early answer before the rest of the body came")
        try client.send(String(repeating: "u", count: 3072))
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().bodyBytes, 4096)
        // The shadow's connection still expects the rest of that body: the next copy must not
        // be sent on it, or the shadow reads it as body bytes.
        XCTAssertEqual(try client.exchange(get("/next")).status, 200)
        XCTAssertTrue(shadow.waitFor { $0.contains { $0.requestLine.hasPrefix("GET /next ") } },
                      "got \(shadow.requests.map(\.requestLine))")
    }

    func testPercentSamplesCopies() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.endpoint, mirror: #""percent": 25"#,
                                      shadowUpstream: #"{ "endpoints": ["\#(shadow.endpoint)"], "maxInFlight": 10000 }"#)
        let count = 2_000
        let admin = try adminPort(proxy)
        let responses = try sendMany(proxy, count: count) { i in get("/s/\(i)?bytes=0") }
        XCTAssertTrue(responses.allSatisfy { $0.status == 200 })
        // Every primary answered: the copies sent are all there will be. None is refused up
        // front (no body, maxInFlight 10,000), so once each has its outcome, none is on its way.
        let sent = try metrics(adminPort: admin).mirrorSent
        let m = try waitForMetrics(adminPort: admin, timeout: 10) { $0.mirrorOutcomes >= sent }
        XCTAssertEqual(m.mirrorCompleted, sent, m.text)
        // 25% of 2,000 is 500, with a standard deviation near 19.
        XCTAssertEqual(Double(shadow.requests.count), 500, accuracy: 80)
    }

    func testSlowShadowDoesNotDelayThePrimary() throws {
        let slow = try startEcho(name: "slow-shadow", delayMs: 200)
        let proxy = try startMirrored(shadow: slow.endpoint, mirror: #""percent": 100"#)
        assertNotDelayed(try timedSequential(proxy, 200), "with every copy taking 200 ms")
        // The copies did go out: the shadow has been answering them (its request counter).
        let direct = try RawClient(port: slow.port).exchange(get("/?delay=0"))
        XCTAssertGreaterThan(try direct.echo().request, 1, "the shadow received copies")
    }

    func testDeadShadowDoesNotFailOrDelayThePrimary() throws {
        let dead = try refusingEndpoint()
        let proxy = try startMirrored(shadow: dead, mirror: #""percent": 100"#)
        assertNotDelayed(try timedSequential(proxy, 200), "with the shadow refusing connections")
    }

    func testSilentShadowKeepsMemoryBoundedAndRequestsSucceeding() throws {
        let silent = try startRecordingServer(silent: true)
        let proxy = try startMirrored(shadow: silent.endpoint, mirror: #""percent": 100"#)
        let warm = try sendMany(proxy, count: 200) { i in get("/w/\(i)?bytes=0") }
        XCTAssertTrue(warm.allSatisfy { $0.status == 200 })
        let before = try XCTUnwrap(proxy.process.residentBytes())
        let responses = try sendMany(proxy, count: 2_000) { i in get("/m/\(i)?bytes=0") }
        let after = try XCTUnwrap(proxy.process.residentBytes())
        XCTAssertEqual(responses.filter { $0.status == 200 }.count, 2_000, "every request succeeds")
        XCTAssertLessThan(after - before, 16 << 20, "RSS grew from \(before >> 10) KiB to \(after >> 10) KiB")
        // The copies are capped per shadow upstream (maxInFlight 100), never queued.
        XCTAssertLessThanOrEqual(silent.server.acceptedCount, 100)
        XCTAssertGreaterThan(silent.server.acceptedCount, 0)
        // And the proxy still answers at once.
        assertNotDelayed(try timedSequential(proxy, 50), "with copies held by the silent shadow")
    }

    func testReloadedLimitsCountCopiesStartedBeforeTheReload() throws {
        let app = try startEcho(name: "app")
        // Copies are pipelined on one shadow connection, so they are answered 200 ms apart.
        let shadow = try startEcho(name: "shadow", delayMs: 200)
        func config(maxInFlight: Int) -> String {
            routingConfig(upstreams: [("app", pool(app.endpoint)),
                                      ("shadow", #"{ "endpoints": ["\#(shadow.endpoint)"], "maxInFlight": \#(maxInFlight) }"#)],
                          routes: [#"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", "percent": 100 } ] }"#],
                          workers: 1, admin: true)
        }
        let proxy = try startProxy(json: config(maxInFlight: 2))
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<2 { XCTAssertEqual(try client.exchange(get("/before/\(i)")).status, 200) }
        // Two copies are in flight at the shadow when the cap is raised.
        try Data(config(maxInFlight: 3).utf8).write(to: URL(fileURLWithPath: proxy.configPath))
        proxy.process.send(signal: SIGHUP)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "reloaded \(proxy.configPath): version 2"), proxy.process.stderr)
        // A copy under the new limits while the old ones are still in flight.
        XCTAssertEqual(try client.exchange(get("/during")).status, 200)
        // All three answered (200, 400 and 600 ms): their places are free again.
        XCTAssertEqual(try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= 3 }.mirrorCompleted, 3)
        for i in 0..<3 { XCTAssertEqual(try client.exchange(get("/after/\(i)")).status, 200) }
        // And each of the next three has its outcome: answered by the shadow, or dropped at the cap.
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= 6 }
        XCTAssertEqual(m.mirrorOutcomes, 6, m.text)
        // The shadow's own counter: 2 + 1 copies, then all 3 under the new cap, then this request.
        let direct = try RawClient(port: shadow.port).exchange(get("/?delay=0"))
        XCTAssertEqual(try direct.echo().request, 7, "copies started before the reload freed their places when they finished")
    }

    func testBufferBudgetDropsCopiesASilentShadowWouldPileUp() throws {
        let silent = try startRecordingServer(silent: true)
        // 128 KiB over 2 workers: 64 KiB for the worker this one client lands on, room for three
        // 16 KiB copies. maxInFlight alone (100) would let every copy through.
        let proxy = try startMirrored(
            shadow: silent.endpoint, mirror: #""percent": 100, "methods": ["*"]"#,
            shadowUpstream: #"{ "endpoints": ["\#(silent.endpoint)"], "maxBufferBytes": 131072 }"#)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        for i in 0..<20 {
            let r = try client.exchange(post("/upload/\(i)", bytes: 16 << 10))
            XCTAssertEqual(r.status, 200, "request \(i) is answered by the primary")
            XCTAssertEqual(try r.echo().bodyBytes, 16 << 10)
        }
        // Every primary answered: each copy was sent or dropped already.
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m.mirrorSent, 3, m.text)
        XCTAssertEqual(m["switchyard_mirror_dropped_total"], 17, m.text)
        XCTAssertTrue(silent.waitFor { $0.count >= m.mirrorSent }, "copies received: \(silent.requests.count)")
        XCTAssertEqual(silent.requests.map(\.bodyBytes), [16 << 10, 16 << 10, 16 << 10], "copies held within 64 KiB")
        // A copy with a body waits for a connection of its own: the dropped ones never opened one
        // (counted once none waits in the shadow's accept queue).
        XCTAssertTrue(waitUntil { LoopbackTCP.acceptBacklog(port: silent.port) == 0 })
        XCTAssertEqual(silent.server.acceptedCount, 3)
    }

    func testChunkedCopyOverTheBufferBudgetIsCutAndTheBudgetFreed() throws {
        let shadow = try startRecordingServer()
        // 64 KiB over 2 workers: 32 KiB for this client's worker.
        let proxy = try startMirrored(
            shadow: shadow.endpoint, mirror: #""percent": 100, "methods": ["*"]"#,
            shadowUpstream: #"{ "endpoints": ["\#(shadow.endpoint)"], "maxBufferBytes": 65536 }"#)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        // A chunked body's length is unknown at the start: the copy is cut as it goes over.
        let big = try client.exchange(chunkedPost("/big", chunks: [20_000, 20_000]))
        XCTAssertEqual(big.status, 200)
        XCTAssertEqual(try big.echo().bodyBytes, 40_000, "the primary gets the whole body")
        // A body that fits is copied whole, so the cut copy gave its bytes back.
        let small = try client.exchange(chunkedPost("/small", chunks: [10_000]))
        XCTAssertEqual(small.status, 200)
        // Both copies have their outcome (the big one cut, the small one answered): none is on its way.
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorOutcomes >= 2 }
        XCTAssertEqual(m.mirrorOutcomes, 2, m.text)
        XCTAssertEqual(shadow.requests.map(\.requestLine), ["POST /small HTTP/1.1"], "the cut copy never reached the shadow whole")
        XCTAssertEqual(shadow.requests.first?.bodyBytes, 10_000)
    }
}
