// Requests to an upstream with `auth.aws` are signed with SigV4: checked by a reference origin
// that recomputes every signature with botocore (Support/sigv4_origin.py; CI installs botocore,
// and a missing botocore fails these tests). Cases: paths and queries needing encoding, bodies
// (a chunked one sent with its length), a session token, whitespace in fields, 1,000 seeded
// random requests; a body over the cap is refused before anything reaches the origin; the
// client's own Authorization is moved or dropped.
import Foundation
import Glibc
import TestSupport
import XCTest

final class SigV4SigningTests: EndToEndTestCase {
    private let accessKey = "AKIDSWITCHYARDTEST"
    private let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSWITCHYARD"
    private let token = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes=="
    private let functionHost = "abcdefgh.lambda-url.eu-west-1.on.aws"

    /// The reference origin, checking signatures made with `token` when given.
    private func startOrigin(token: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> UInt16 {
        let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Support/sigv4_origin.py").path
        let p = adopt(try ChildProcess(executable: "/usr/bin/env",
                                       arguments: ["python3", script, accessKey, secret, "eu-west-1", "lambda"] + (token.map { [$0] } ?? [])))
        guard let text = p.waitForStderrLine(containing: "listening on "), let port = Self.port(after: "listening on ", in: text) else {
            p.kill()
            XCTFail("the botocore reference origin did not start (python3 with botocore is required: pip install botocore): \(p.stderr)",
                    file: file, line: line)
            throw TestError("reference origin did not start")
        }
        return port
    }

    private func config(origin: UInt16, auth: String = "", maxBodyBytes: Int = 0) -> String {
        """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 1,
          "limits": { "maxBodyBytes": \(maxBodyBytes) },
          "upstreams": {
            "fn": { "endpoints": ["127.0.0.1:\(origin)"], "hostHeader": "\(functionHost)",
                    "auth": { "aws": { "service": "lambda", "region": "eu-west-1"\(auth) } } }
          },
          "routes": [ { "name": "default", "upstream": "fn" } ]
        }
        """
    }

    private var credentialsEnvironment: [String: String?] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": nil,
         "AWS_PROFILE": nil, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]
    }

    /// No source of credentials at all: instance metadata switched off, so nothing waits on
    /// 169.254.169.254.
    private var noCredentialsEnvironment: [String: String?] {
        ["AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
         "AWS_PROFILE": nil, "AWS_WEB_IDENTITY_TOKEN_FILE": nil, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": nil,
         "AWS_CONTAINER_CREDENTIALS_FULL_URI": nil, "AWS_EC2_METADATA_DISABLED": "true"]
    }

    private func assertSigned(_ r: HTTPResponse, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 200, "\(what): \(r.bodyText)", file: file, line: line)
    }

    func testRequestsNeedingEncodingBodiesAndWhitespaceAreSignedAsBotocoreChecks() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin), environment: credentialsEnvironment)
        let c = try connect(proxy)
        let targets = [
            "/", "/hello%20world", "/a+b/c%2Bd", "/100%25/sure", "/caf%C3%A9/%E2%82%AC", "/res!$&'()*,;=:@/x",
            "//double//slashes/", "/dots/./x/../y", "/~user/-._",
            "/q?b=2&a=1&a=0&c", "/q?empty=&=novalue&x", "/q?sp=a%20b&plus=a%2Bb&pct=100%25&u=%E2%82%AC",
            "/q?res=%21%24%26%27%28%29%2A%2C%3B%3D%3A%40%2F%3F", "/q?Z=1&z=2&_=3&~=4&-=5&.=6",
        ]
        for t in targets {
            assertSigned(try c.exchange("GET \(t) HTTP/1.1\r\nHost: client.example\r\n\r\n"), t)
        }
        let body = "{\"payload\": \"caf\u{e9} \u{20ac}\"}"
        assertSigned(try c.exchange("POST /invoke?x=1 HTTP/1.1\r\nHost: client.example\r\nContent-Type: application/json\r\n"
                                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"), "POST with a body")
        assertSigned(try c.exchange("PUT /empty HTTP/1.1\r\nHost: client.example\r\nContent-Length: 0\r\n\r\n"), "PUT with an empty body")
        assertSigned(try c.exchange("GET /ws HTTP/1.1\r\nHost: client.example\r\nX-Spaced:   a    b\t\tc   \r\n"
                                    + "X-Repeated: one\r\nX-Repeated:  two  \r\nUser-Agent: curl/8\r\n\r\n"), "whitespace and repeated fields")
        // Chunks (with an extension and a trailer) become one body with its length.
        let chunked = try c.exchange("POST /chunked HTTP/1.1\r\nHost: client.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     + "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
        assertSigned(chunked, "a chunked body")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(chunked.body)) as? [String: Any])
        XCTAssertEqual(report["bodyLength"] as? Int, 11, "the payload alone, sent with its length")
        // A body the origin answers over several reads, larger than a pooled block.
        let large = String(repeating: "0123456789abcdef", count: 8192)
        try c.send("POST /large HTTP/1.1\r\nHost: client.example\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in stride(from: 0, to: large.utf8.count, by: 40_000) {
            let part = large.utf8.dropFirst(piece).prefix(40_000)
            try c.send(String(part.count, radix: 16) + "\r\n" + String(decoding: part, as: UTF8.self) + "\r\n")
        }
        try c.send("0\r\n\r\n")
        assertSigned(try c.readResponse(method: "POST"), "a large chunked body")
    }

    /// Head and a 1 MiB body in one write, as load generators send them: the proxy's first read
    /// takes the head and part of the body, and the rest must be read without a new readiness
    /// event (it stalled until the body timer answered 408).
    func testABodySentInOneWriteWithItsHeadIsReadWhole() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin), environment: credentialsEnvironment)
        let c = try connect(proxy)
        let body = String(repeating: "x", count: 1 << 20)
        for i in 0..<4 {
            let r = try c.exchange("POST /one-write HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)", method: "POST")
            assertSigned(r, "request \(i)")
        }
    }

    func testSessionTokenIsSentAndSigned() throws {
        let origin = try startOrigin(token: token)
        var env = credentialsEnvironment
        env["AWS_SESSION_TOKEN"] = token
        let proxy = try startProxy(json: config(origin: origin), environment: env)
        let c = try connect(proxy)
        assertSigned(try c.exchange("POST /t?k=v HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), "with a session token")
    }

    func testCredentialsFromTheSharedFileProfile() throws {
        let origin = try startOrigin()
        let file = try writeFile("credentials", """
            [default]
            aws_access_key_id = AKIDWRONGDEFAULT
            aws_secret_access_key = wrong

            # the router's own
            [router]
            aws_access_key_id = \(accessKey)
            aws_secret_access_key = \(secret)
            """)
        let proxy = try startProxy(json: config(origin: origin), environment: [
            "AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil,
            "AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "router",
        ])
        assertSigned(try connect(proxy).exchange(get("/from-file")), "credentials from profile router")
    }

    func testThousandRandomRequestsAreAllSignedCorrectly() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin), environment: credentialsEnvironment)
        let c = try connect(proxy)
        var rng = SeededGenerator(seed: 0x5167_0004)
        for i in 0..<1_000 {
            let request = randomRequest(&rng)
            let r = try c.exchange(request.text, method: request.method)
            XCTAssertEqual(r.status, 200, "request \(i): \(request.text.prefix(300))\n\(r.bodyText)")
            if r.status != 200 { break }
        }
    }

    func testBodyOverTheCapIsRefusedBeforeAnythingReachesTheOrigin() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin, auth: ", \"maxBodyBytes\": 1000"), environment: credentialsEnvironment)
        let over = String(repeating: "x", count: 1001)
        let byLength = try connect(proxy).exchange("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n\(over)")
        XCTAssertEqual(byLength.status, 413)
        let chunks = String(repeating: "64\r\n" + String(repeating: "y", count: 100) + "\r\n", count: 11) + "0\r\n\r\n"
        let chunked = try connect(proxy).exchange("POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(chunks)")
        XCTAssertEqual(chunked.status, 413)
        let atCap = try connect(proxy).exchange("POST /fits HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n\(over.dropFirst())")
        assertSigned(atCap, "a body of exactly maxBodyBytes")
        XCTAssertEqual(atCap.header("X-Origin-Requests"), "1", "the refused bodies never reached the origin")
    }

    func testClientAuthorizationIsMovedByDefault() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin), environment: credentialsEnvironment)
        let r = try connect(proxy).exchange(get("/me", ["Authorization: Bearer user-token", "X-Forwarded-Authorization: forged",
                                                        "X-Amz-Date: 20000101T000000Z"]))
        assertSigned(r, "with the client's Authorization")
        let fields = try receivedFields(r)
        XCTAssertEqual(fields.filter { $0.0.lowercased() == "x-forwarded-authorization" }.map(\.1), ["Bearer user-token"])
        XCTAssertEqual(fields.filter { $0.0.lowercased() == "authorization" }.count, 1)
        XCTAssertFalse(fields.contains { $0.1.contains("user-token") && $0.0.lowercased() == "authorization" })
        XCTAssertFalse(fields.contains { $0.1 == "20000101T000000Z" }, "the client's X-Amz-Date is not sent")
    }

    func testClientAuthorizationCanBeDropped() throws {
        let origin = try startOrigin()
        let proxy = try startProxy(json: config(origin: origin, auth: ", \"clientAuthorization\": \"drop\""), environment: credentialsEnvironment)
        let r = try connect(proxy).exchange(get("/me", ["Authorization: Bearer user-token"]))
        assertSigned(r, "with the client's Authorization dropped")
        XCTAssertFalse(try receivedFields(r).contains { $0.1.contains("user-token") })
    }

    /// Copies to a signing shadow: bodiless ones signed at once; one with a body (by length or
    /// chunked) holds its head until the body is whole and is signed over it, a chunked one sent
    /// as its payload with a length; one over the signing's maxBodyBytes is skipped. The primary
    /// (an unsigned echo) answers every request as without the shadow.
    func testShadowCopiesToASignedUpstreamAreSignedWithTheirBodies() throws {
        let origin = try startOrigin()
        let echo = try startEcho(name: "primary")
        let json = config(origin: origin, auth: ", \"maxBodyBytes\": 100000")
            .replacingOccurrences(of: "\"upstreams\": {", with: "\"upstreams\": { \"app\": { \"endpoints\": [\"\(echo.endpoint)\"] },")
            .replacingOccurrences(of: #"{ "name": "default", "upstream": "fn" }"#,
                                  with: #"{ "name": "default", "upstream": "app", "mirror": [ { "upstream": "fn", "percent": 100, "methods": ["*"] } ] }"#)
        let proxy = try startProxy(json: json, environment: credentialsEnvironment)
        let c = try connect(proxy)
        func assertPrimary(_ r: HTTPResponse, body: String, _ what: String) {
            XCTAssertEqual(r.status, 200, what)
            XCTAssertTrue(r.bodyText.contains("\"bodyBytes\":\(body.utf8.count)") || r.bodyText.contains("\"bodyBytes\" : \(body.utf8.count)"),
                          "\(what): the primary got its whole body: \(r.bodyText.prefix(300))")
        }
        // Over the signing's limit: the copy is skipped when its head is read, the primary served.
        let tooLarge = String(repeating: "z", count: 100_001)
        assertPrimary(try c.exchange("POST /too-large HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n\(tooLarge)"),
                      body: tooLarge, "a body over the signing's limit")
        for i in 0..<3 { XCTAssertEqual(try c.exchange(get("/shadowed?n=\(i)", ["Authorization: Bearer u"])).status, 200) }
        let body = "{\"shadowed\": \"caf\u{e9}\"}"
        assertPrimary(try c.exchange("POST /with-body?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"), body: body, "a body with its length")
        // Chunks in two writes, with an extension and a trailer: the copy waits for the last one.
        try c.send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n")
        try c.send("6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        assertPrimary(try c.readResponse(method: "POST"), body: "hello world", "a chunked body")

        let direct = try RawClient(port: origin)
        var verdicts: [String: Int] = [:]
        XCTAssertTrue(try waitUntil {
            let r = try direct.exchange(get("/__verdicts"))
            verdicts = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Int])
            return (verdicts["ok"] ?? 0) + (verdicts["refused"] ?? 0) >= 5
        }, "the five copies reach the shadow: \(verdicts)")
        XCTAssertEqual(verdicts, ["ok": 5, "refused": 0], "every copy signed as botocore checks, the one over the limit not sent")
        let bodies = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try direct.exchange(get("/__bodies")).body)) as? [String])
        XCTAssertEqual(bodies.sorted(), [body, "hello world", "", "", ""].sorted(),
                       "each copy carried its request's body (a chunked one as its payload)")
    }

    func testAColorSignsWithItsOwnAuth() throws {
        let origin = try startOrigin()
        let echo = try startEcho(name: "blue")
        let proxy = try startProxy(json: """
            {
              "listeners": [ { "address": "127.0.0.1:0" } ],
              "workers": 1,
              "upstreams": {
                "fn": { "live": "green", "hostHeader": "\(functionHost)",
                        "blue": { "endpoints": ["\(echo.endpoint)"] },
                        "green": { "endpoints": ["127.0.0.1:\(origin)"],
                                   "auth": { "aws": { "service": "lambda", "region": "eu-west-1" } } } }
              },
              "routes": [ { "name": "default", "upstream": "fn" } ]
            }
            """, environment: credentialsEnvironment)
        assertSigned(try connect(proxy).exchange("POST /green HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"), "the live green color")
    }

    /// Health checks and warm-up GETs to a locked function are signed too: botocore accepts
    /// every one, and the endpoint stays healthy.
    func testHealthChecksAndWarmupsAreSigned() throws {
        let origin = try startOrigin()
        let echo = try startEcho(name: "blue")
        let socket = try temporaryDirectory() + "/c.sock"
        let proxy = try startProxy(json: """
            {
              "listeners": [ { "address": "127.0.0.1:0" } ],
              "workers": 1,
              "control": { "socket": "\(socket)" },
              "upstreams": {
                "fn": { "live": "blue", "hostHeader": "\(functionHost)",
                        "healthCheck": { "path": "/health", "intervalMs": 100 },
                        "warmup": { "path": "/warm", "requests": 3 },
                        "blue": { "endpoints": ["\(echo.endpoint)"] },
                        "green": { "endpoints": ["127.0.0.1:\(origin)"],
                                   "auth": { "aws": { "service": "lambda", "region": "eu-west-1" } } } }
              },
              "routes": [ { "name": "default", "upstream": "fn" } ]
            }
            """, environment: credentialsEnvironment)
        let direct = try RawClient(port: origin)
        func verdicts() throws -> [String: Int] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try direct.exchange(get("/__verdicts")).body)) as? [String: Int])
        }
        XCTAssertTrue(try waitUntil { (try verdicts()["ok"] ?? 0) >= 3 }, "health checks reach the function: \((try? verdicts()) ?? [:])")
        let flip = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "--json", "flip", "fn"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("\"warmup\""), flip.stdout)
        assertSigned(try connect(proxy).exchange(get("/after-flip")), "green serves once warmed")
        XCTAssertEqual(try verdicts()["refused"], 0, "every check and warm-up GET carried a valid signature: \((try? verdicts()) ?? [:])")
    }

    func testCredentialsFromTheContainerEndpointSignWithTheirSessionToken() throws {
        let origin = try startOrigin(token: token)
        let json = #"{"AccessKeyId":"\#(accessKey)","SecretAccessKey":"\#(secret)","Token":"\#(token)","Expiration":"2099-01-01T00:00:00Z"}"#
        let agent = try HTTPStandIn { request in
            request.header("Authorization") == "pod-identity-token" ? HTTPStandIn.response(200, json) : HTTPStandIn.response(401)
        }
        var env = noCredentialsEnvironment
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:\(agent.port)/v1/credentials"
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "pod-identity-token"
        let proxy = try startProxy(json: config(origin: origin), environment: env)
        assertSigned(try connect(proxy).exchange(get("/from-the-agent")), "credentials from the container endpoint")
        XCTAssertEqual(agent.requests.map(\.target), ["/v1/credentials"])
    }

    /// Temporary credentials from the container endpoint are renewed in the background before
    /// they expire, and requests are signed with the new ones; while renewals fail, the current
    /// ones keep signing, and each failure is one log line.
    func testTemporaryCredentialsAreRenewedAndKeptWhileRenewalsFail() throws {
        let origin = try startOrigin(token: "*")
        let served = Locked(0)
        let failing = Locked(false)
        let agent = try HTTPStandIn { [accessKey, secret] _ in
            if failing.value { return HTTPStandIn.response(500, "agent down") }
            served.mutate { $0 += 1 }
            let f = ISO8601DateFormatter()
            let expiration = f.string(from: Date().addingTimeInterval(6))
            return HTTPStandIn.response(200, #"{"AccessKeyId":"\#(accessKey)","SecretAccessKey":"\#(secret)","Token":"token-\#(served.value)","Expiration":"\#(expiration)"}"#)
        }
        var env = noCredentialsEnvironment
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:\(agent.port)/v1/credentials"
        let proxy = try startProxy(json: config(origin: origin), environment: env)
        func tokenSent() throws -> String? {
            let r = try connect(proxy).exchange(get("/token"))
            assertSigned(r, "signed with the credentials of the moment")
            return try receivedFields(r).first { $0.0.lowercased() == "x-amz-security-token" }?.1
        }
        XCTAssertEqual(try tokenSent(), "token-1")
        // Half of the six seconds left, then renewed: the next requests carry the new token.
        XCTAssertTrue(waitUntil(timeout: 15, interval: 0.05) { (try? tokenSent()) == "token-2" }, "renewed before expiry")
        failing.value = true
        let before = agent.requests.count
        XCTAssertTrue(waitUntil(timeout: 15, interval: 0.05) { agent.requests.count > before }, "a renewal was tried")
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "keeping the current one"), proxy.process.stderr)
        XCTAssertEqual(try tokenSent(), "token-2", "the current credentials keep signing while renewals fail")
        // Each failed renewal is one line, logged once it has failed: the two counts meet.
        var lines: [String] = []
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.01) {
            let failures = agent.requests.count - before
            lines = proxy.process.stderr.components(separatedBy: "\n").filter { $0.contains("renewing") && $0.contains("failed") }
            return lines.count == failures && failures > 0
        }, "one log line per failed renewal: \(lines)")
        XCTAssertFalse(proxy.process.stderr.contains(secret), "the secret is never logged")
    }

    func testNoCredentialsIsAConfigErrorNamingTheUpstream() throws {
        let path = try writeFile("fn.json", config(origin: 9))
        let p = adopt(try ChildProcess(switchyard: ["run", "--config", path], environment: noCredentialsEnvironment))
        XCTAssertNotNil(p.waitForExit(), "the proxy refuses to start")
        XCTAssertTrue(p.stderr.contains("\(path): upstreams.fn.auth.aws: no AWS credentials found"), p.stderr)
    }

    // MARK: helpers

    private func receivedFields(_ r: HTTPResponse) throws -> [(String, String)] {
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
        let fields = try XCTUnwrap(report["fields"] as? [[String]])
        return fields.map { ($0[0], $0[1]) }
    }

    /// A request with a random method, path, query, fields and body (some chunked), every
    /// component encoded the way an HTTP client sends it (upper-case percent escapes; bytes
    /// that are not UTF-8 included).
    private func randomRequest(_ rng: inout SeededGenerator) -> (method: String, text: String) {
        let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        let method = methods[Int(rng.next() % UInt64(methods.count))]
        let pathChars = Array("abcXYZ019-._~!$&'()*,;=:@+")
        var target = ""
        for _ in 0..<Int(1 + rng.next() % 4) {
            target += "/"
            for _ in 0..<Int(rng.next() % 8) {
                switch rng.next() % 4 {
                case 0: target += percentEncoded(UInt8(truncatingIfNeeded: rng.next()))
                default: target.append(pathChars[Int(rng.next() % UInt64(pathChars.count))])
                }
            }
        }
        if rng.next() % 3 != 0 {
            var params: [String] = []
            for _ in 0..<Int(rng.next() % 5) {
                // No blank parameter ("a&&b", a trailing "&"): aws-c-auth skips those and
                // botocore signs them as "=", so no signer can please both (README).
                let key = randomComponent(&rng)
                params.append(key.isEmpty || rng.next() % 5 != 0 ? key + "=" + randomComponent(&rng) : key)
            }
            target += "?" + params.joined(separator: "&")
        }
        var text = "\(method) \(target) HTTP/1.1\r\nHost: client.example\r\n"
        for i in 0..<Int(rng.next() % 4) {
            let spaces = String(repeating: " ", count: Int(rng.next() % 4))
            text += "X-Field-\(i):\(spaces)v\(rng.next() % 100)\(spaces)w\(spaces)\r\n"
        }
        guard method == "POST" || method == "PUT" || method == "PATCH" else { return (method, text + "\r\n") }
        let body = String((0..<Int(rng.next() % 3000)).map { _ in Character(UnicodeScalar(UInt8(32 + rng.next() % 95))) })
        if rng.next() % 2 == 0 {
            return (method, text + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
        }
        var chunked = text + "Transfer-Encoding: chunked\r\n\r\n"
        var rest = Substring(body)
        while !rest.isEmpty {
            let n = min(rest.count, Int(1 + rng.next() % 700))
            chunked += String(n, radix: 16) + "\r\n" + rest.prefix(n) + "\r\n"
            rest = rest.dropFirst(n)
        }
        return (method, chunked + "0\r\n\r\n")
    }

    private func randomComponent(_ rng: inout SeededGenerator) -> String {
        let plain = Array("abcABZ09-._~")
        var s = ""
        for _ in 0..<Int(rng.next() % 6) {
            if rng.next() % 3 == 0 { s += percentEncoded(UInt8(truncatingIfNeeded: rng.next())) } else {
                s.append(plain[Int(rng.next() % UInt64(plain.count))])
            }
        }
        return s
    }

    private func percentEncoded(_ b: UInt8) -> String {
        let unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || [0x2D, 0x2E, 0x5F, 0x7E].contains(b)
        return unreserved ? String(UnicodeScalar(b)) : String(format: "%%%02X", b)
    }
}
