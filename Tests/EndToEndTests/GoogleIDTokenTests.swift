// `auth.google`: the proxy asks a metadata server (an in-test stand-in on loopback, named by
// GCE_METADATA_HOST) for an ID token, sends it as `Authorization: Bearer` on requests, shadow
// copies and health checks (the client's own moved to X-Forwarded-Authorization), renews it in
// the background before its short `exp`, and keeps the old one while renewals fail or are
// answered without Metadata-Flavor: Google, with one log line and one count per failure. The
// token never shows in the log or /metrics.
import Foundation
import Glibc
import TestSupport
import XCTest

final class GoogleIDTokenTests: EndToEndTestCase {
    private let audience = "https://fn-abc123-ew.a.run.app"
    private let ok = #"switchyard_credentials_refresh_total{provider="google",result="ok"}"#
    private let failed = #"switchyard_credentials_refresh_total{provider="google",result="failed"}"#

    /// A metadata server handing out tokens `…t1`, `…t2`, … valid for `lifetime` seconds;
    /// `thenFailing`: failing once it has handed out the first.
    private final class MetadataStandIn: @unchecked Sendable {
        enum Mode { case tokens, failing, withoutFlavor }
        private let lock = NSLock()
        private var mode = Mode.tokens
        private var issued: [String] = []
        private var heads: [String] = []
        let lifetime: Int
        private let thenFailing: Bool

        init(lifetime: Int, thenFailing: Bool) {
            self.lifetime = lifetime
            self.thenFailing = thenFailing
        }

        func set(_ m: Mode) { lock.withLock { mode = m } }
        var tokens: [String] { lock.withLock { issued } }
        var requests: [String] { lock.withLock { heads } }

        func answer(_ head: String) -> String {
            lock.withLock {
                heads.append(head)
                switch mode {
                case .failing: return "HTTP/1.1 503 Service Unavailable\r\nMetadata-Flavor: Google\r\nContent-Length: 0\r\n\r\n"
                case .tokens, .withoutFlavor:
                    let payload = #"{"aud":"https://fn-abc123-ew.a.run.app","exp":\#(time(nil) + lifetime)}"#
                    let token = "eyJhbGciOiJSUzI1NiJ9." + Data(payload.utf8).base64EncodedString()
                        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                        .replacingOccurrences(of: "=", with: "") + ".t\(issued.count + 1)"
                    if mode == .tokens { issued.append(token) }
                    let flavor = mode == .tokens ? "Metadata-Flavor: Google\r\n" : ""
                    if thenFailing { mode = .failing }
                    return "HTTP/1.1 200 OK\r\n\(flavor)Content-Type: text/html\r\nContent-Length: \(token.utf8.count)\r\n\r\n\(token)"
                }
            }
        }
    }

    private func startMetadata(lifetime: Int, thenFailing: Bool = false) throws -> (MetadataStandIn, UInt16) {
        let standIn = MetadataStandIn(lifetime: lifetime, thenFailing: thenFailing)
        let server = try startServer { connection, _ in
            guard let head = connection.readHead() else { return }
            _ = connection.send(standIn.answer(head))
        }
        return (standIn, server.port)
    }

    private func startProxy(origin: String, shadow: String, metadata: UInt16) throws -> (RunningProxy, UInt16) {
        let auth = #""auth": { "google": { "audience": "\#(audience)" } }"#
        let proxy = try startProxy(json: """
            {
              "listeners": [ { "address": "127.0.0.1:0" } ],
              "workers": 1,
              "upstreams": {
                "fn": { "endpoints": ["\(origin)"], \(auth),
                        "healthCheck": { "path": "/health", "intervalMs": 200, "timeoutMs": 200 } },
                "shadow": { "endpoints": ["\(shadow)"], \(auth) }
              },
              "routes": [ { "name": "default", "upstream": "fn", "mirror": [ { "upstream": "shadow", "percent": 100 } ] } ],
              "admin": { "address": "127.0.0.1:0" }
            }
            """, environment: ["GCE_METADATA_HOST": "127.0.0.1:\(metadata)"])
        return (proxy, try adminPort(proxy))
    }

    /// The Authorization the origin saw on a request sent now through the proxy.
    private func authorizationSeen(_ proxy: RunningProxy, _ origin: RecordingServer, path: String = "/api") throws -> [String] {
        let before = origin.requests.count
        let r = try connect(proxy).exchange("GET \(path) HTTP/1.1\r\nHost: fn\r\nX-Forwarded-Authorization: forged\r\n"
            + "Authorization: Basic dXNlcjpwdw==\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        guard origin.waitFor({ $0.dropFirst(before).contains { $0.requestLine.hasPrefix("GET \(path) ") } }),
              let seen = origin.requests.dropFirst(before).last(where: { $0.requestLine.hasPrefix("GET \(path) ") }) else {
            throw TestError("the origin saw no \(path)")
        }
        XCTAssertEqual(seen.headers(named: "X-Forwarded-Authorization"), ["Basic dXNlcjpwdw=="], "the client's own moved, a forged one dropped")
        return seen.headers(named: "Authorization")
    }

    func testTheOriginShadowAndChecksGetTheTokenAndTheRenewedOneBeforeItsExp() throws {
        let (metadata, metadataPort) = try startMetadata(lifetime: 6)
        let origin = try startRecordingServer()
        let shadow = try startRecordingServer()
        let (proxy, admin) = try startProxy(origin: origin.endpoint, shadow: shadow.endpoint, metadata: metadataPort)
        let first = try XCTUnwrap(metadata.tokens.first)
        let asked = try XCTUnwrap(metadata.requests.first)
        XCTAssertTrue(asked.hasPrefix("GET /computeMetadata/v1/instance/service-accounts/default/identity?audience="
            + "https%3A%2F%2Ffn-abc123-ew.a.run.app&format=full HTTP/1.0\r\n"), asked)
        XCTAssertTrue(asked.contains("\r\nMetadata-Flavor: Google\r\n"), asked)

        XCTAssertEqual(try authorizationSeen(proxy, origin), ["Bearer \(first)"])
        XCTAssertTrue(shadow.waitFor { $0.contains { $0.header("Authorization") == "Bearer \(first)" } }, "the shadow copy carries it")
        XCTAssertTrue(origin.waitFor { $0.contains { $0.requestLine.hasPrefix("GET /health ") && $0.header("Authorization") == "Bearer \(first)" } },
                      "so do health checks")

        // Renewed at half its 6 s lifetime, in the background: the next request carries the new one.
        XCTAssertTrue(waitUntil(timeout: 20) { metadata.tokens.count >= 2 }, "renewed before exp")
        var seen: [String] = []
        XCTAssertTrue(try waitUntil(timeout: 10, interval: 0.05) {
            seen = try authorizationSeen(proxy, origin)
            return seen != ["Bearer \(first)"]
        })
        XCTAssertTrue(metadata.tokens.dropFirst().contains { seen == ["Bearer \($0)"] }, "\(seen)")
        let m = try waitForMetrics(adminPort: admin) { $0[ok] >= 1 }
        let expiry = m["switchyard_credentials_expiry_seconds{provider=\"google\",credential=\"\(audience)\"}"]
        XCTAssertTrue(expiry > 0 && expiry <= 6, "\(expiry): \(m.text)")

        let text = try RawClient(port: admin, timeout: 5).exchange("GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n").bodyText
        for token in metadata.tokens {
            XCTAssertFalse(text.contains(token), "no token in /metrics")
            XCTAssertFalse(proxy.process.stderr.contains(token), "no token in the log")
        }
    }

    func testAFailingMetadataServerKeepsTheOldTokenAndLogsEachFailure() throws {
        let (metadata, metadataPort) = try startMetadata(lifetime: 4, thenFailing: true)
        let origin = try startRecordingServer()
        let shadow = try startRecordingServer()
        let (proxy, admin) = try startProxy(origin: origin.endpoint, shadow: shadow.endpoint, metadata: metadataPort)
        let first = try XCTUnwrap(metadata.tokens.first)

        let failures = try waitForMetrics(adminPort: admin, timeout: 20) {
            $0[failed] >= 1
        }
        XCTAssertEqual(failures[ok], 0)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "credentials: renewing google \(audience) failed: metadata server "
            + "127.0.0.1:\(metadataPort) answered 503; keeping the current one, which expires in"))
        XCTAssertEqual(try authorizationSeen(proxy, origin), ["Bearer \(first)"], "the old token, while it lasts")

        // An answer that does not say it comes from a metadata server is refused the same way.
        metadata.set(.withoutFlavor)
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "answered without Metadata-Flavor: Google", timeout: 20))
        XCTAssertEqual(try authorizationSeen(proxy, origin), ["Bearer \(first)"], "its token is not used")

        // One log line per failure (each is logged before it is counted).
        let counted = try metrics(adminPort: admin)[failed]
        func logged() -> Int { proxy.process.stderr.components(separatedBy: "credentials: renewing google").count - 1 }
        XCTAssertTrue(waitUntil { logged() >= counted }, "logged \(logged()), counted \(counted)")
        XCTAssertTrue(logged() <= counted + 1, "logged \(logged()), counted \(counted)")

        metadata.set(.tokens)
        XCTAssertTrue(try waitUntil(timeout: 40, interval: 0.05) { try authorizationSeen(proxy, origin) != ["Bearer \(first)"] },
                      "a later renewal recovers without a reload")
    }

    func testAColorWithItsOwnTokenWarmsUpWithItAndTheOtherSendsNone() throws {
        let (metadata, metadataPort) = try startMetadata(lifetime: 3600)
        let blue = try startRecordingServer()
        let green = try startRecordingServer()
        let socket = try temporaryDirectory() + "/control.sock"
        let proxy = try startProxy(json: routingConfig(
            upstreams: [("fn", """
                { "live": "blue", "warmup": { "path": "/warm", "requests": 1 },
                  "blue": { "endpoints": ["\(blue.endpoint)"] },
                  "green": { "endpoints": ["\(green.endpoint)"], "auth": { "google": { "audience": "\(audience)", "clientAuthorization": "drop" } } } }
                """)],
            routes: [#"{ "name": "default", "upstream": "fn" }"#], controlSocket: socket),
            environment: ["GCE_METADATA_HOST": "127.0.0.1:\(metadataPort)"])
        let token = try XCTUnwrap(metadata.tokens.first)
        let request = "GET /api HTTP/1.1\r\nHost: fn\r\nAuthorization: Basic dXNlcjpwdw==\r\n\r\n"
        XCTAssertEqual(try connect(proxy).exchange(request).status, 200)
        XCTAssertTrue(blue.waitFor { !$0.isEmpty })
        XCTAssertEqual(blue.requests.first?.headers(named: "Authorization"), ["Basic dXNlcjpwdw=="], "blue has no auth: the client's passes")

        let flip = try ChildProcess.run(switchyard: ["ctl", "--socket", socket, "flip", "fn"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        let warmed = try XCTUnwrap(green.requests.first, "the warm-up reached green before the flip answered")
        XCTAssertEqual(warmed.requestLine, "GET /warm HTTP/1.1")
        XCTAssertEqual(warmed.headers(named: "Authorization"), ["Bearer \(token)"], "a locked service warms up with the token")

        XCTAssertEqual(try connect(proxy).exchange(request).status, 200)
        XCTAssertTrue(green.waitFor { $0.count == 2 })
        XCTAssertEqual(green.requests.last?.headers(named: "Authorization"), ["Bearer \(token)"])
        XCTAssertEqual(green.requests.last?.headers(named: "X-Forwarded-Authorization"), [], "dropped")
    }
}
