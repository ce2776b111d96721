// Pipelined requests: several in one write are answered one after another, in order.
import XCTest

final class PipeliningTests: EndToEndTestCase {
    func testThreePipelinedRequestsAnsweredInOrder() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send(get("/one?delay=200") + "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get("/three"))
        let paths = try (0..<3).map { _ in try client.readResponse().echo() }
        XCTAssertEqual(paths.map(\.path), ["/one", "/two", "/three"], "a slow first answer still comes first")
        XCTAssertEqual(paths[1].body, "abc")
    }
}
