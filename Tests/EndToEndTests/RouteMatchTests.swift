// Route matching through the real proxy: host (exact and wildcard, any case, port ignored),
// path prefix, methods and headers; the first matching route wins; rewrites change the path
// the upstream sees; a request no route matches gets 404.
import XCTest

final class RouteMatchTests: EndToEndTestCase {
    /// One echo per name, one upstream per echo, and a proxy with `routes`.
    private func start(echoes names: [String], routes: [String]) throws -> RunningProxy {
        let echoes = try names.map { try startEcho(name: $0) }
        return try startProxy(json: routingConfig(upstreams: zip(names, echoes).map { ($0, pool($1.endpoint)) }, routes: routes))
    }

    /// Sends `request` on a new connection: the status and the echo that served it (nil for an
    /// answer of the proxy itself).
    private func route(_ proxy: RunningProxy, _ request: String) throws -> (status: Int, upstream: String?) {
        let r = try connect(proxy).exchange(request)
        return (r.status, r.header("X-Echo-Name"))
    }

    func testHostExactAndWildcard() throws {
        let proxy = try start(echoes: ["exact", "wild", "fallback"], routes: [
            #"{ "name": "exact", "match": { "host": "api.example.com" }, "upstream": "exact" }"#,
            #"{ "name": "wild", "match": { "host": ["*.apps.test", "apps.example.org"] }, "upstream": "wild" }"#,
            #"{ "name": "fallback", "upstream": "fallback" }"#,
        ])
        let cases: [(host: String, upstream: String)] = [
            ("api.example.com", "exact"),
            ("API.Example.COM", "exact"),
            ("api.example.com:8443", "exact"),
            ("x.api.example.com", "fallback"),
            ("api.example.com.evil", "fallback"),
            ("shop.apps.test", "wild"),
            ("a.b.apps.test:80", "wild"),
            ("SHOP.Apps.Test", "wild"),
            ("apps.test", "fallback"),
            ("xapps.test", "fallback"),
            ("apps.example.org", "wild"),
        ]
        for c in cases {
            let r = try route(proxy, get("/", host: c.host))
            XCTAssertEqual(r.status, 200, c.host)
            XCTAssertEqual(r.upstream, c.upstream, "Host: \(c.host)")
        }
    }

    func testPathPrefixAndMethods() throws {
        let proxy = try start(echoes: ["writes", "static", "fallback"], routes: [
            #"{ "name": "writes", "match": { "pathPrefix": "/orders", "methods": ["POST", "put"] }, "upstream": "writes" }"#,
            #"{ "name": "static", "match": { "pathPrefix": "/static/" }, "upstream": "static" }"#,
            #"{ "name": "fallback", "upstream": "fallback" }"#,
        ])
        let post = "POST /orders/7 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
        let put = "PUT /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        let postElsewhere = "POST /static/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        XCTAssertEqual(try route(proxy, post).upstream, "writes")
        XCTAssertEqual(try route(proxy, put).upstream, "writes", "methods in the config are uppercased")
        XCTAssertEqual(try route(proxy, get("/orders/7")).upstream, "fallback", "GET is not a listed method")
        XCTAssertEqual(try route(proxy, postElsewhere).upstream, "static")
        XCTAssertEqual(try route(proxy, get("/static/app.js")).upstream, "static")
        XCTAssertEqual(try route(proxy, get("/static/")).upstream, "static")
        XCTAssertEqual(try route(proxy, get("/static")).upstream, "fallback", "the prefix is matched byte for byte")
        XCTAssertEqual(try route(proxy, get("/Static/app.js")).upstream, "fallback", "paths are case-sensitive")
        XCTAssertEqual(try route(proxy, get("/static/x?q=/orders")).upstream, "static", "the query is not part of the path")
    }

    func testHeaderMatches() throws {
        let proxy = try start(echoes: ["acme", "debug", "fallback"], routes: [
            #"{ "name": "acme", "match": { "headers": { "X-Tenant": "acme", "X-Region": "eu" } }, "upstream": "acme" }"#,
            #"{ "name": "debug", "match": { "headers": { "X-Debug": "*" } }, "upstream": "debug" }"#,
            #"{ "name": "fallback", "upstream": "fallback" }"#,
        ])
        XCTAssertEqual(try route(proxy, get("/", ["X-Tenant: acme", "X-Region: eu"])).upstream, "acme")
        XCTAssertEqual(try route(proxy, get("/", ["x-region: eu", "x-tenant: acme"])).upstream, "acme")
        XCTAssertEqual(try route(proxy, get("/", ["X-Tenant: acme"])).upstream, "fallback", "every header must match")
        XCTAssertEqual(try route(proxy, get("/", ["X-Tenant: Acme", "X-Region: eu"])).upstream, "fallback",
                       "values are compared exactly")
        XCTAssertEqual(try route(proxy, get("/", ["X-Tenant: other", "X-Tenant: acme", "X-Region: eu"])).upstream, "acme",
                       "any of a repeated header's values")
        XCTAssertEqual(try route(proxy, get("/", ["X-Debug: 1"])).upstream, "debug")
        XCTAssertEqual(try route(proxy, get("/", ["X-Debug: "])).upstream, "debug", "\"*\" only needs the header present")
        XCTAssertEqual(try route(proxy, get("/")).upstream, "fallback")
    }

    func testFirstMatchingRouteWins() throws {
        let proxy = try start(echoes: ["first", "second"], routes: [
            #"{ "name": "first", "match": { "pathPrefix": "/api", "host": "*.example.com" }, "upstream": "first" }"#,
            #"{ "name": "second", "match": { "pathPrefix": "/api" }, "upstream": "second" }"#,
        ])
        XCTAssertEqual(try route(proxy, get("/api/x", host: "www.example.com")).upstream, "first")
        XCTAssertEqual(try route(proxy, get("/api/x", host: "example.net")).upstream, "second")
    }

    func testRewriteChangesThePathTheUpstreamSees() throws {
        let proxy = try start(echoes: ["app"], routes: [
            #"{ "name": "strip", "match": { "pathPrefix": "/api" }, "rewrite": { "stripPrefix": "/api" }, "upstream": "app" }"#,
            #"{ "name": "legacy", "match": { "pathPrefix": "/legacy" }, "rewrite": { "prefix": "/v2" }, "upstream": "app" }"#,
            #"{ "name": "rest", "upstream": "app" }"#,
        ])
        let cases: [(sent: String, path: String, target: String)] = [
            ("/api/users/7?x=1", "/users/7", "/users/7?x=1"),
            ("/api", "/", "/"),
            ("/api/", "/", "/"),
            ("/api?q=1", "/", "/?q=1"),
            ("/apiv2/x", "/v2/x", "/v2/x"),
            ("/legacy/orders?id=3", "/v2/legacy/orders", "/v2/legacy/orders?id=3"),
            ("/other/api", "/other/api", "/other/api"),
        ]
        let client = try connect(proxy)
        for c in cases {
            let r = try client.exchange(get(c.sent))
            XCTAssertEqual(r.status, 200, c.sent)
            let echo = try r.echo()
            XCTAssertEqual(echo.path, c.path, "sent \(c.sent)")
            XCTAssertEqual(echo.target, c.target, "sent \(c.sent)")
        }
        // Absolute-form targets are routed and rewritten by their path.
        let r = try client.exchange("GET http://example.test/api/abs?z=9 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        XCTAssertEqual(try r.echo().target, "/abs?z=9")
    }

    func testNoMatchingRouteIs404() throws {
        let proxy = try start(echoes: ["app"], routes: [
            #"{ "name": "api", "match": { "host": "api.example.com", "pathPrefix": "/v1" }, "upstream": "app" }"#,
        ])
        let client = try connect(proxy)
        XCTAssertEqual(try client.exchange(get("/v1/x", host: "api.example.com")).status, 200)
        let miss = try client.exchange(get("/v2/x", host: "api.example.com"))
        XCTAssertEqual(miss.status, 404)
        XCTAssertNil(miss.header("X-Echo-Name"))
        XCTAssertEqual(try client.exchange(get("/v1/x", host: "www.example.com")).status, 404)
        // A 404 keeps the connection usable.
        XCTAssertEqual(try client.exchange(get("/v1/y", host: "api.example.com")).status, 200)
        // Pipelined behind a 404, the next request is read and answered once.
        try client.send(get("/nope", host: "api.example.com") + get("/v1/z", host: "api.example.com"))
        XCTAssertEqual(try client.readResponse().status, 404)
        let next = try client.readResponse()
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(try next.echo().path, "/v1/z")
        let post = try connect(proxy)
        XCTAssertEqual(try post.exchange("POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc").status, 404)
    }
}
