// HTTP/1.0 clients: without keep-alive the connection closes after the response; with
// "Connection: keep-alive" it stays open for the next request. They take no chunked framing
// (RFC 9112 6.1): a chunked answer reaches them as its payload alone, which the proxy's close
// delimits, and a close that could pass for the end of a cut-short body is a reset.
import Foundation
import Glibc
import TestSupport
import XCTest

final class HTTP10Tests: EndToEndTestCase {
    func testHTTP10ClientGetsResponseThenClose() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("GET /old HTTP/1.0\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().path, "/old")
        XCTAssertEqual(client.waitForClose(), .closed(extraBytes: 0))
    }

    func testHTTP10KeepAliveStaysOpen() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("GET /one HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Connection")?.lowercased(), "keep-alive")
        try client.send("GET /two HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let second = try client.readResponse()
        XCTAssertEqual(try second.echo().path, "/two")
    }

    // MARK: chunked answers

    /// Several chunks, extensions of every shape, a chunk size split between two sends (the
    /// second waits for the test), and a trailer.
    private static let chunkedParts = [
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1",
        "0\r\n, chunked world!\r\n3 ; a=\"q;x\" ;b\r\nabc\r\n0\r\nX-Checksum: 123\r\n\r\n",
    ]

    func testChunkedAnswerReachesHTTP10ClientAsItsPayloadThenClose() throws {
        let gate = DispatchSemaphore(value: 0)
        let upstream = try answering(Self.chunkedParts, gate: gate)
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        for keepAlive in ["", "Connection: keep-alive\r\n"] {
            let client = try connect(proxy)
            try client.send("GET /stream HTTP/1.0\r\nHost: a\r\n\(keepAlive)\r\n")
            var r = try client.readHead()
            XCTAssertEqual(String(decoding: try client.read(count: 5), as: UTF8.self), "hello", keepAlive)
            gate.signal()
            try client.readBody(&r, method: "GET")   // no length and no chunks: until the close
            XCTAssertEqual(r.status, 200)
            XCTAssertNil(r.header("Transfer-Encoding"), keepAlive)
            XCTAssertNil(r.header("Content-Length"), keepAlive)
            XCTAssertEqual(r.headers(named: "Connection").map { $0.lowercased() }, ["close"], keepAlive)
            XCTAssertEqual(r.bodyText, ", chunked world!abc", "the payload alone, without sizes, extensions or trailer")
        }
    }

    func testChunkedAnswerReachesHTTP11ClientAsSent() throws {
        let gate = DispatchSemaphore(value: 0)
        let upstream = try answering(Self.chunkedParts, gate: gate)
        gate.signal()   // both answers go out whole
        gate.signal()
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send(get("/stream"))
        let r = try client.readHead()
        XCTAssertEqual(r.header("Transfer-Encoding"), "chunked")
        XCTAssertNil(r.header("Connection"))
        let sent = Self.chunkedParts.joined()
        let body = String(sent[sent.range(of: "\r\n\r\n")!.upperBound...])
        XCTAssertEqual(String(decoding: try client.read(count: body.utf8.count), as: UTF8.self), body)
        XCTAssertEqual(try client.exchange(get("/again")).bodyText, "hello, chunked world!abc", "the connection stays open")
    }

    func testHTTP10HeadAndCodedAnswersCarryNoTransferEncoding() throws {
        let upstream = try startServer { conn, _ in
            while let head = conn.readHead() {
                if head.hasPrefix("HEAD") {
                    conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                } else {
                    conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n")
                }
            }
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        let head = try client.exchange("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(head.status, 200)
        XCTAssertNil(head.header("Transfer-Encoding"))
        XCTAssertEqual(head.header("Connection")?.lowercased(), "keep-alive", "no body to delimit")
        // Without its chunks the payload would still be gzip-coded, and nothing could say so.
        let coded = try client.exchange("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(coded.status, 502)
        XCTAssertNil(coded.header("Transfer-Encoding"))
    }

    // MARK: bodies cut short

    func testChunkedBodyCutShortResetsTheHTTP10Client() throws {
        // The upstream closes 7 bytes into a 16-byte chunk.
        let upstream = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nonly pa")
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send("GET / HTTP/1.0\r\n\r\n")
        let (received, ending) = readToTheEnd(client)
        XCTAssertEqual(ending, .reset, "an orderly close would pass for the end of the body: \(received.debugDescription)")
        XCTAssertFalse(received.contains("chunked"), received)
    }

    func testCloseDelimitedBodyCutShortResetsTheClient() throws {
        // The upstream resets its connection mid-body: its close cannot end the body.
        let upstream = try startServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial")
            conn.resetOnClose()
        }
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send(get("/"))
        let (received, ending) = readToTheEnd(client)
        XCTAssertEqual(ending, .reset, received)
    }

    // MARK: helpers

    /// An upstream that answers every request on a connection with `parts`, sent one by one;
    /// each part after the first waits for `gate` (so the proxy reads them apart). The
    /// connection stays open after the last part.
    private func answering(_ parts: [String], gate: DispatchSemaphore = DispatchSemaphore(value: 0)) throws -> RawServer {
        try startServer { conn, _ in
            while conn.readHead() != nil {
                for (i, part) in parts.enumerated() {
                    if i > 0 { _ = gate.wait(timeout: .now() + 10) }
                    conn.send(part)
                }
            }
        }
    }

    /// Everything the proxy sends until its connection ends, and how it ended (`.closed`,
    /// `.reset`, or `.timedOut` when it did not).
    private func readToTheEnd(_ client: RawClient) -> (String, SocketError) {
        var received: [UInt8] = []
        while true {
            do { received += try client.readSome() } catch {
                return (String(decoding: received, as: UTF8.self), error as? SocketError ?? .system("recv", 0))
            }
        }
    }
}
