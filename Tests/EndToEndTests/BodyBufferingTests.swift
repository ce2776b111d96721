// limits.bufferBodyBytes: a small request body is read whole before an upstream connection is
// taken, so a client that stalls mid-body holds none; larger bodies stream as they come. The
// echo upstream numbers its connections (X-Echo-Connection), which tells whether a request that
// was still waiting for its body had taken one.
import XCTest

final class BodyBufferingTests: EndToEndTestCase {
    private func proxy(endpoints: [String], limits: String = "", bodyMs: Int = 300_000) throws -> RunningProxy {
        try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "limits": { \(limits) },
          "timeouts": { "idleMs": 5000, "bodyMs": \(bodyMs), "responseMs": 5000 },
          "upstreams": { "app": { "endpoints": [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))], "outlierDetection": false } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
    }

    /// A client sends a head with `Expect: 100-continue` and waits for the 100, proof that the
    /// proxy has its head; meanwhile another client's GET tells which upstream connection it
    /// got: the first when the waiting request holds none, the second when it holds one.
    /// Then the body follows and arrives whole.
    private func assertWaitingRequest(_ proxy: RunningProxy, holdsUpstream: Bool, length: Int,
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let waiting = try connect(proxy)
        try waiting.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(try waiting.readResponse(method: "POST").status, 100, file: file, line: line)
        let other = try connect(proxy).exchange(get("/other"))
        XCTAssertEqual(other.status, 200, file: file, line: line)
        XCTAssertEqual(try other.echo().connection, holdsUpstream ? 2 : 1, "upstream connections taken", file: file, line: line)
        let body = String(repeating: "b", count: length)
        try waiting.send(body)
        let r = try waiting.readResponse(method: "POST")
        XCTAssertEqual(r.status, 200, file: file, line: line)
        let seen = try r.echo()
        XCTAssertEqual(seen.bodyBytes, length, file: file, line: line)
        XCTAssertEqual(seen.has("Expect"), holdsUpstream, "Expect goes upstream only when the upstream answers it",
                       file: file, line: line)
    }

    func testASmallBodyIsReadBeforeAnUpstreamIsTaken() throws {
        let echo = try startEcho()
        try assertWaitingRequest(try proxy(endpoints: [echo.endpoint]), holdsUpstream: false, length: 16_384)
    }

    func testALargerBodyStreamsAsItComes() throws {
        let echo = try startEcho()
        try assertWaitingRequest(try proxy(endpoints: [echo.endpoint]), holdsUpstream: true, length: 16_385)
    }

    func testZeroTurnsBufferingOff() throws {
        let echo = try startEcho()
        try assertWaitingRequest(try proxy(endpoints: [echo.endpoint], limits: "\"bufferBodyBytes\": 0"), holdsUpstream: true, length: 10)
    }

    /// A body that stops arriving is answered 408 at bodyMs, and no upstream connection was
    /// ever taken for it: the next request is the upstream's first connection.
    func testAStalledSmallBodyIs408WithoutAnUpstreamConnection() throws {
        let echo = try startEcho()
        let proxy = try proxy(endpoints: [echo.endpoint], bodyMs: 500)
        let stalled = try connect(proxy)
        try stalled.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        XCTAssertEqual(try stalled.readResponse(method: "POST").status, 408)
        XCTAssertNotEqual(stalled.waitForClose(), .open)
        let next = try connect(proxy).exchange(get("/next"))
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(try next.echo().connection, 1)
    }

    /// Content-Length and chunked bodies that come in pieces, pipelined with the next request,
    /// reach the upstream byte for byte; a chunked body larger than the limit streams on.
    func testBodiesInPiecesArriveWhole() throws {
        let echo = try startEcho()
        let proxy = try proxy(endpoints: [echo.endpoint], limits: "\"bufferBodyBytes\": 1024")
        let c = try connect(proxy)
        try c.send("POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello")
        try c.send(" world" + get("/after"))
        let cl = try c.readResponse(method: "POST")
        XCTAssertEqual(try cl.echo().body, "hello world")
        XCTAssertEqual(try cl.echo().header("Content-Length"), "11")
        XCTAssertEqual(try c.readResponse().status, 200, "the pipelined request after the body")

        try c.send("POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        try c.send("6\r\n world\r\n0\r\n\r\n")
        let chunked = try c.readResponse(method: "POST")
        XCTAssertEqual(try chunked.echo().body, "hello world")

        let big = String(repeating: "c", count: 3000)
        try c.send("POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n\(big)\r\n")
        try c.send("bb8\r\n\(big)\r\n0\r\n\r\n")
        XCTAssertEqual(try c.readResponse(method: "POST").echo().bodyBytes, 6000)
    }

    /// The first endpoint refuses: a body read whole, after the proxy's own 100 Continue, is
    /// sent to the next endpoint (the 100 is no response, so it does not stop the retry).
    func testABufferedBodyIsRetriedAfterAConnectFailure() throws {
        let echo = try startEcho()
        let proxy = try proxy(endpoints: [try refusingEndpoint(), echo.endpoint])
        for i in 0..<2 {
            let r = try connect(proxy).sendAfterContinue("PUT", "/doc", body: "data")
            XCTAssertEqual(r.status, 200, "request \(i): \(r.bodyText)")
            XCTAssertEqual(try r.echo().body, "data", "request \(i)")
        }
    }
}
