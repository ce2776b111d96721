// Response heads have limits of their own (limits.maxResponseHeaderBytes, maxResponseHeaders),
// larger than the request limits since applications send large cookie sets: a head within them
// passes, one over them is a 502 that says so, and never counts against the endpoint.
import XCTest

final class ResponseLimitsTests: EndToEndTestCase {
    /// An upstream whose answer to `/big/N` carries N bytes of Set-Cookie headers.
    private func cookieUpstream() throws -> RawServer {
        try startServer { conn, _ in
            while let head = conn.readHead() {
                let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                let size = Int(target.split(separator: "/").last ?? "") ?? 0
                var cookies = ""
                var i = 0
                while cookies.utf8.count < size {
                    cookies += "Set-Cookie: c\(i)=\(String(repeating: "v", count: 200))\r\n"
                    i += 1
                }
                _ = conn.send("HTTP/1.1 200 OK\r\n\(cookies)Content-Length: 2\r\n\r\nok")
            }
        }
    }

    func testA30KBHeadPassesAndAnOversizedOneIsA502ThatEjectsNothing() throws {
        let upstream = try cookieUpstream()
        let endpoint = "127.0.0.1:\(upstream.port)"
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ], "admin": { "address": "127.0.0.1:0" },
          "upstreams": { "app": { "endpoints": ["\(endpoint)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
        let admin = try adminPort(proxy)
        // 30 KB of cookies, as uvicorn sent: over the request limit (16 KiB), within the response one.
        let fine = try connect(proxy).exchange(get("/big/30000"))
        XCTAssertEqual(fine.status, 200)
        XCTAssertEqual(fine.bodyText, "ok")
        for i in 0..<6 {
            let r = try connect(proxy).exchange(get("/big/100000"))
            XCTAssertEqual(r.status, 502, "attempt \(i)")
            XCTAssertTrue(r.bodyText.contains("response head too large"), r.bodyText)
        }
        XCTAssertEqual(try connect(proxy).exchange(get("/big/0")).status, 200, "the endpoint stays in its pool")
        let m = try metrics(adminPort: admin)
        XCTAssertEqual(m[#"switchyard_endpoint_ejections_total{upstream="app",color="default",endpoint="\#(endpoint)"}"#], 0, m.text)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "response head too large"), proxy.process.stderr)
    }

    func testTheLimitsAreConfigurable() throws {
        let upstream = try cookieUpstream()
        let proxy = try startProxy(json: """
        { "workers": 1, "listeners": [ { "address": "127.0.0.1:0" } ],
          "limits": { "maxResponseHeaderBytes": 4096, "maxResponseHeaders": 50 },
          "upstreams": { "app": { "endpoints": ["127.0.0.1:\(upstream.port)"] } },
          "routes": [ { "name": "main", "upstream": "app" } ] }
        """)
        XCTAssertEqual(try connect(proxy).exchange(get("/big/2000")).status, 200)
        XCTAssertEqual(try connect(proxy).exchange(get("/big/6000")).status, 502, "over 4096 bytes")
    }
}
