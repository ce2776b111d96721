// Upstream connections are pooled per worker: with one worker, sequential requests reach the
// upstream over one connection whether they come on one client connection or on several.
import XCTest

final class ConnectionReuseTests: EndToEndTestCase {
    func testSequentialRequestsOnOneClientConnectionShareOneUpstreamConnection() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        for i in 0..<20 {
            let r = try client.exchange(get("/r\(i)"))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("X-Echo-Connection"), "1", "request \(i)")
        }
    }

    func testRequestsFromSeveralClientConnectionsShareOneUpstreamConnection() throws {
        let (proxy, _) = try startProxyWithEcho()
        for i in 0..<10 {
            let client = try connect(proxy)
            let r = try client.exchange(get("/c\(i)"))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("X-Echo-Connection"), "1", "client connection \(i)")
            client.close()
        }
        // A client that sends a body keeps the same upstream connection too.
        let client = try connect(proxy)
        let r = try client.exchange("PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
        XCTAssertEqual(r.header("X-Echo-Connection"), "1")
    }

    func testRoundRobinOverTwoEndpoints() throws {
        let a = try startEcho(name: "a")
        let b = try startEcho(name: "b")
        let proxy = try startProxy(ProxyConfig(endpoints: [a.endpoint, b.endpoint]))
        let client = try connect(proxy)
        let names = try (0..<6).map { i in try client.exchange(get("/\(i)")).header("X-Echo-Name") ?? "?" }
        XCTAssertEqual(names.filter { $0 == "a" }.count, 3, "\(names)")
        XCTAssertEqual(names.filter { $0 == "b" }.count, 3, "\(names)")
        for i in 1..<names.count { XCTAssertNotEqual(names[i], names[i - 1], "equal weights alternate: \(names)") }
    }
}
