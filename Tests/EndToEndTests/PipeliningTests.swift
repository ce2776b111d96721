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

final class PipelinedLocalAnswersTests: EndToEndTestCase {
    /// Answers the proxy gives itself (no route, upstream down) come back one per request,
    /// without nesting one call per pipelined request (run with a small stack to show it).
    private func assertPipelinedAnswers(_ config: ProxyConfig, path: String, status: Int,
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        let proxy = try startProxy(config, stackKB: 256, file: file, line: line)
        let client = try connect(proxy, timeout: 10)
        let count = 2000
        try client.send(String(repeating: get(path), count: count))
        for i in 0..<count {
            let r = try client.readResponse()
            guard r.status == status else {
                return XCTFail("response \(i): \(r.status) \(r.bodyText)", file: file, line: line)
            }
        }
        XCTAssertNil(proxy.process.poll(), "the proxy is still running", file: file, line: line)
    }

    func testManyPipelinedRequestsWithNoRoute() throws {
        var config = ProxyConfig(endpoints: [try refusingEndpoint()])
        config.routes = [#"{ "name": "only", "match": { "pathPrefix": "/only" }, "upstream": "app" }"#]
        try assertPipelinedAnswers(config, path: "/elsewhere", status: 404)
    }

    func testManyPipelinedRequestsToADeadUpstream() throws {
        // Ejection off: every request pays the failed connect and gets its 502 (with ejection,
        // the sixth on would be a 503 "no healthy endpoint", another local answer).
        var config = ProxyConfig(endpoints: [try refusingEndpoint()])
        config.upstreamExtra = #""outlierDetection": false"#
        try assertPipelinedAnswers(config, path: "/", status: 502)
    }
}
