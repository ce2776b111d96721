// Requests the proxy refuses itself (a few representative rows; the parser's own tests hold the
// full tables): the status, whether the connection closes, and that the upstream never sees them.
import XCTest

final class StrictnessTests: EndToEndTestCase {
    /// An upstream that only counts connections (and answers, should anything arrive).
    private func countingUpstream() throws -> RawServer {
        try startServer { conn, server in
            while let head = conn.readHead() {
                server.record(head)
                conn.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            }
        }
    }

    private func assertRefused(_ request: String, status: Int, closes: Bool = true,
                               configure: (inout ProxyConfig) -> Void = { _ in },
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let upstream = try countingUpstream()
        var config = ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"])
        configure(&config)
        let proxy = try startProxy(config, file: file, line: line)
        let client = try connect(proxy)
        try client.send(request)
        let r = try client.readResponse()
        XCTAssertEqual(r.status, status, r.bodyText, file: file, line: line)
        if closes {
            XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0), "connection closed after \(status)", file: file, line: line)
        }
        XCTAssertEqual(upstream.acceptedCount, 0, "the refused request reached the upstream", file: file, line: line)
    }

    func testTransferEncodingWithContentLength() throws {
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400)
    }

    func testBadContentLength() throws {
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12abc\r\n\r\n", status: 400)
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", status: 400)
    }

    func testMissingHost() throws {
        try assertRefused("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", status: 400)
    }

    func testUnsupportedVersion() throws {
        try assertRefused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505)
    }

    func testURITooLong() throws {
        try assertRefused(get("/" + String(repeating: "u", count: 9000)), status: 414)
    }

    func testHeadTooLarge() throws {
        try assertRefused(get("/", ["X-Big: " + String(repeating: "h", count: 20000)]), status: 431)
    }

    func testUnknownTransferCoding() throws {
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501)
    }

    func testObsoleteLineFolding() throws {
        try assertRefused("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n  two\r\n\r\n", status: 400)
    }

    func testSmugglingAttemptNeverReachesUpstream() throws {
        // The classic CL.TE desync: a proxy reading Content-Length would forward "G" as the start
        // of a second request.
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", status: 400)
    }

    func testBodyOverMaxBodyBytes() throws {
        try assertRefused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n", status: 413) { $0.maxBodyBytes = 1024 }
    }

    func testBadChunkSizeInBodyGives400() throws {
        let upstream = try countingUpstream()
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
    }
}
