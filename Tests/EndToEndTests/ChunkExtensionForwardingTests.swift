// Chunk extensions in a request body are checked and left out of what the upstream receives,
// and so are trailer fields: the chunks and their sizes arrive as sent, the trailer section
// empty (a trailer naming Content-Length, Transfer-Encoding or Host could be merged into the
// head upstream, RFC 9110 6.5.1).
import XCTest

final class ChunkExtensionForwardingTests: EndToEndTestCase {
    func testExtensionsAreRemovedFromTheForwardedBody() throws {
        let upstream = try chunkEchoingUpstream()
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        // Extensions of every allowed shape, and a chunk header split across two writes.
        try client.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n4;a;b=\"q;uoted\"\r\nde")
        try client.send("fg\r\n2 ; x=1\r\nhi\r\n0;last\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "3\r\nabc\r\n4\r\ndefg\r\n2\r\nhi\r\n0\r\n\r\n")
    }

    func testTrailerFieldsAreNotForwarded() throws {
        let upstream = try chunkEchoingUpstream()
        let proxy = try startProxy(ProxyConfig(endpoints: ["127.0.0.1:\(upstream.port)"]))
        let client = try connect(proxy)
        try client.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                        + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nX-Checksum: 1\r\n\r\n")
        let r = try client.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyText, "2\r\nok\r\n0\r\n\r\n")
    }

    /// An upstream that answers each chunked request with the body bytes it received, up to the
    /// end of the chunked message.
    private func chunkEchoingUpstream() throws -> RawServer {
        try startServer { conn, server in
            guard let head = conn.readHead() else { return }
            server.record(head)
            // The body as it arrived, up to the end of the chunked message.
            var body = conn.takeBuffered()
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !body.suffix(5).elementsEqual(Array("0\r\n\r\n".utf8)) {
                let n = chunk.withUnsafeMutableBytes { recv(conn.fd, $0.baseAddress!, $0.count, 0) }
                if n <= 0 { break }
                body += chunk[0..<n]
            }
            let text = String(decoding: body, as: UTF8.self)
            _ = conn.send("HTTP/1.1 200 OK\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
        }
    }
}
