// An error in the second or a later request on a connection gets the same answer as in the
// first: the status a first request gets, with its body, then the close. (It was a silent
// close: the previous request's "response started" answered for the new one.)
import XCTest

final class LaterRequestErrorTests: EndToEndTestCase {
    private let bad: [(name: String, request: String)] = [
        ("missing Host", "GET /bad HTTP/1.1\r\n\r\n"),
        ("duplicate Content-Length", "POST /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("HTTP/2.0", "GET /bad HTTP/2.0\r\nHost: a\r\n\r\n"),
        ("gzip, chunked", "POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ]

    /// The status a bad request gets as the first request on a connection.
    private func firstAnswer(_ proxy: RunningProxy, _ request: String) throws -> Int {
        let c = try connect(proxy)
        try c.send(request)
        let r = try c.readResponse()
        XCTAssertGreaterThanOrEqual(r.status, 400)
        return r.status
    }

    func testAnErrorInALaterSequentialRequestIsAnswered() throws {
        let (proxy, _) = try startProxyWithEcho()
        for (name, request) in bad {
            let expected = try firstAnswer(proxy, request)
            let c = try connect(proxy)
            XCTAssertEqual(try c.exchange(get("/ok")).status, 200)
            XCTAssertEqual(try c.exchange(get("/ok")).status, 200)
            try c.send(request)
            let r = try c.readResponse()
            XCTAssertEqual(r.status, expected, "\(name): the third request gets its own answer")
            XCTAssertEqual(r.header("Connection")?.lowercased(), "close", name)
            guard case .closed = c.waitForClose() else { return XCTFail("\(name): the connection stays open") }
        }
    }

    func testAnErrorInALaterPipelinedRequestIsAnswered() throws {
        let (proxy, _) = try startProxyWithEcho()
        for (name, request) in bad {
            let expected = try firstAnswer(proxy, request)
            let c = try connect(proxy)
            try c.send(get("/one") + get("/two") + request)
            XCTAssertEqual(try c.readResponse().status, 200)
            XCTAssertEqual(try c.readResponse().status, 200)
            let r = try c.readResponse()
            XCTAssertEqual(r.status, expected, "\(name): the pipelined third request gets its own answer")
        }
    }

    /// A head that never completes on a kept-alive connection gets its 408 too.
    func testAPartialLaterHeadGetsItsTimeout() throws {
        let (proxy, _) = try startProxyWithEcho { $0.headerMs = 300 }
        let c = try connect(proxy)
        XCTAssertEqual(try c.exchange(get("/ok")).status, 200)
        try c.send("GET /slow HTTP/1.1\r\nHost: a\r\n")
        XCTAssertEqual(try c.readResponse().status, 408)
    }
}
