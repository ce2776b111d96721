// A shadow copy is sent again only when the shadow certainly did not process it: a shadow that
// reads a POST and closes without answering must not receive it a second time, while copies
// caught behind an announced close still arrive, each once. Per mirror, `stripHeaders` keeps the
// client's credentials away from the shadow.
import Foundation
import Glibc
import XCTest

final class MirrorResendTests: EndToEndTestCase {
    private func startMirrored(shadow: UInt16, mirror: String, admin: Bool = false) throws -> RunningProxy {
        let app = try startEcho(name: "app")
        let route = #"{ "name": "main", "upstream": "app", "mirror": [ { "upstream": "shadow", \#(mirror) } ] }"#
        return try startProxy(json: routingConfig(
            upstreams: [("app", pool(app.endpoint)), ("shadow", pool("127.0.0.1:\(shadow)"))], routes: [route],
            admin: admin))
    }

    /// Waits until the proxy is done with every copy it started (each ends with exactly one
    /// outcome, a resend included): after that no copy can still reach the shadow.
    private func waitForCopiesToEnd(_ admin: UInt16, count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let m = try waitForMetrics(adminPort: admin) { $0.mirrorSent == count && $0.mirrorOutcomes == count }
        XCTAssertEqual(m.mirrorOutcomes, count, "every copy ended (sent \(m.mirrorSent))", file: file, line: line)
    }

    private func requestLines(_ server: RawServer) -> [String] {
        server.recordedHeads.map { $0.split(separator: "\r\n").first.map(String.init) ?? "" }
    }

    /// The attack: the shadow reads each copy whole, acts on it, and hangs up without an answer.
    func testACopyTheShadowMayHaveProcessedIsNotSentAgainUnlessIdempotent() throws {
        let shadow = try startServer { conn, server in
            guard let head = conn.readHead() else { return }
            server.record(head)
            // The shadow acting on the copy (its body arrives meanwhile); then it hangs up
            // without a word. This pause is the shadow's behaviour, not a window the test waits on.
            usleep(20_000)
        }
        let proxy = try startMirrored(shadow: shadow.port, mirror: #""percent": 100, "methods": ["*"]"#, admin: true)
        let admin = try adminPort(proxy)
        let client = try connect(proxy)
        // One request at a time, each once the proxy is done with the copy before (it has seen
        // the shadow hang up): a copy written on a connection whose close the proxy has not yet
        // seen would be lost, not resent, and this test is about the resending.
        XCTAssertEqual(try client.exchange(get("/read")).status, 200, "the primary never notices the shadow")
        try waitForCopiesToEnd(admin, count: 1)
        let post = "POST /pay HTTP/1.1\r\nHost: example.test\r\nAuthorization: Bearer secret\r\nCookie: session=s1\r\n"
            + "Content-Length: 5\r\n\r\nhello"
        XCTAssertEqual(try client.exchange(post).status, 200)
        try waitForCopiesToEnd(admin, count: 2)
        let patch = "PATCH /pay/1 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\n{}"
        XCTAssertEqual(try client.exchange(patch).status, 200)
        try waitForCopiesToEnd(admin, count: 3)

        let lines = requestLines(shadow)
        XCTAssertEqual(lines.filter { $0.hasPrefix("POST /pay ") }.count, 1,
                       "a POST the shadow may have processed is not sent again: \(lines)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("PATCH /pay/1 ") }.count, 1, "nor a PATCH: \(lines)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("GET /read ") }.count, 2,
                       "an idempotent copy is sent again once, then given up: \(lines)")
    }

    /// Copies pipelined behind an answer that announced the close were never processed: even
    /// POSTs go again, and every one arrives exactly once.
    func testPostsCaughtBehindAnAnnouncedCloseArriveExactlyOnce() throws {
        let shadow = try startServer { conn, server in
            var answered = 0
            while let head = conn.readHead() {
                server.record(head)
                answered += 1
                if answered % 3 == 0 {
                    conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    _ = Glibc.shutdown(conn.fd, Int32(SHUT_WR))
                    conn.waitForPeerClose(timeout: 2)
                    return
                }
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            }
        }
        let proxy = try startMirrored(shadow: shadow.port, mirror: #""percent": 100, "methods": ["POST"]"#, admin: true)
        let admin = try adminPort(proxy)
        let total = 90
        var clients: [RawClient] = []
        for _ in 0..<3 { clients.append(try connect(proxy)) }
        for (c, client) in clients.enumerated() {
            var batch = ""
            for i in stride(from: c, to: total, by: clients.count) {
                batch += "POST /order/\(i) HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n"
            }
            try client.send(batch)
        }
        for (c, client) in clients.enumerated() {
            for _ in stride(from: c, to: total, by: clients.count) { XCTAssertEqual(try client.readResponse().status, 200) }
        }
        try waitForCopiesToEnd(admin, count: total)
        let lines = requestLines(shadow)
        XCTAssertEqual(Set(lines).count, total, "every copy arrived")
        XCTAssertEqual(lines.count, total, "none twice: \(Dictionary(grouping: lines, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted())")
    }

    func testStripHeadersKeepsCredentialsFromTheShadow() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.port,
                                      mirror: #""percent": 100, "stripHeaders": ["authorization", "COOKIE", "X-Api-Key"]"#)
        let client = try connect(proxy)
        let r = try client.exchange(get("/account", ["Authorization: Bearer secret", "cookie: session=s1", "Cookie: b=2",
                                                     "X-API-KEY: k", "X-Trace: t-1"]))
        XCTAssertEqual(r.status, 200)
        let primary = try r.echo()
        XCTAssertEqual(primary.header("Authorization"), "Bearer secret", "the primary keeps its credentials")
        XCTAssertEqual(primary.headers(named: "Cookie").count, 2)
        XCTAssertEqual(primary.header("X-Api-Key"), "k")

        XCTAssertTrue(shadow.waitFor { $0.count == 1 })
        let copy = try XCTUnwrap(shadow.requests.first)
        XCTAssertEqual(copy.headers(named: "Authorization"), [], "stripped, whatever the case it was sent in")
        XCTAssertEqual(copy.headers(named: "Cookie"), [])
        XCTAssertEqual(copy.headers(named: "X-Api-Key"), [])
        XCTAssertEqual(copy.header("X-Trace"), "t-1", "other fields are copied")
        XCTAssertEqual(copy.header("X-Switchyard-Shadow"), "1")
        XCTAssertEqual(copy.header("Host"), "example.test")
    }

    func testWithoutStripHeadersCopiesKeepEveryField() throws {
        let shadow = try startRecordingServer()
        let proxy = try startMirrored(shadow: shadow.port, mirror: #""percent": 100"#)
        XCTAssertEqual(try connect(proxy).exchange(get("/account", ["Authorization: Bearer secret", "Cookie: s=1"])).status, 200)
        XCTAssertTrue(shadow.waitFor { $0.count == 1 })
        XCTAssertEqual(shadow.requests.first?.header("Authorization"), "Bearer secret", "the default keeps fields, as before")
        XCTAssertEqual(shadow.requests.first?.header("Cookie"), "s=1")
    }
}
