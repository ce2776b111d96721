// Release events posted to the config's hooks: a flip reaches a local receiver signed with the
// hook's secret (checked here with OpenSSL's HMAC), a 500 is retried with the same delivery id,
// and /metrics counts what was delivered and retried.
internal import COpenSSL
import Foundation
import TestSupport
import XCTest

final class HooksTests: EndToEndTestCase {
    private struct Received: Sendable {
        var head: String
        var body: [UInt8]
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return nil
        }
    }

    /// A receiver that answers 500 to its first `failures` posts, then 204; every post kept.
    private func startReceiver(failures: Int) throws -> (RawServer, Locked<[Received]>) {
        let received = Locked<[Received]>([])
        let server = try startServer { conn, _ in
            while let head = conn.readHead() {
                guard let body = conn.readBody(after: head) else { return }
                var count = 0
                received.mutate { list in
                    list.append(Received(head: head, body: body))
                    count = list.count
                }
                // Closed after each answer, as a server does for the HTTP/1.0 requests hooks send.
                conn.send(count <= failures ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                            : "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                return
            }
        }
        return (server, received)
    }

    func testAFlipIsPostedSignedAndRetriedAfterA500() throws {
        let (receiver, received) = try startReceiver(failures: 1)
        let secret = "a hook secret of more than sixteen bytes"
        let secretFile = try writeFile("hook.secret", secret)
        XCTAssertEqual(chmod(secretFile, 0o600), 0)
        let blue = try startEcho(name: "blue"), green = try startEcho(name: "green"), canary = try startEcho(name: "canary")
        var json = try controlConfig(blue: blue, green: green, canary: canary)
        json = String(json.dropLast(2)) + """
            ,
              "admin": { "address": "127.0.0.1:0" },
              "hooks": [ { "url": "http://127.0.0.1:\(receiver.port)/switchyard", "events": ["flip", "guard_reverted"],
                           "secretFile": "\(secretFile)" } ]
            }
            """
        let proxy = try startProxy(json: json)
        let control = try ControlLineClient(path: try controlSocket())
        XCTAssertEqual(try control.command("flip checkout")["live"] as? String, "green")
        XCTAssertTrue(waitUntil(timeout: 10) { received.value.count == 2 }, "a 500, then the retry")
        let posts = received.value
        XCTAssertEqual(posts[0].header("X-Switchyard-Delivery"), posts[1].header("X-Switchyard-Delivery"), "the same delivery")
        for post in posts {
            XCTAssertTrue(post.head.hasPrefix("POST /switchyard HTTP/1."), post.head)
            XCTAssertEqual(post.header("X-Switchyard-Event"), "flip")
            XCTAssertEqual(post.header("Content-Type"), "application/json")
            XCTAssertEqual(post.header("X-Switchyard-Signature"), "sha256=" + hmac(Array(secret.utf8), post.body), "signed body")
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(post.body)) as? [String: Any])
            XCTAssertEqual(object["event"] as? String, "flip")
            XCTAssertEqual(object["upstream"] as? String, "checkout")
            XCTAssertEqual(object["live"] as? String, "green")
            XCTAssertNotNil(object["time"] as? String)
        }
        // A set weights is no event this hook asked for.
        XCTAssertEqual(try control.command("set weights shop stable=90 canary=10")["ok"] as? Bool, true)
        let metrics = try waitForMetrics(adminPort: try adminPort(proxy)) {
            $0[#"switchyard_hook_deliveries_total{event="flip",result="delivered"}"#] == 1
        }
        XCTAssertEqual(metrics[#"switchyard_hook_deliveries_total{event="flip",result="retried"}"#], 1)
        // The status page shows what other systems were told.
        let admin = try adminPort(proxy)
        let status = try RawClient(port: admin, timeout: 5).exchange("GET /status.json HTTP/1.1\r\nHost: a\r\n\r\n")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.bodyText.utf8)) as? [String: Any])
        let flip = (object["hooks"] as? [String: Any])?["flip"] as? [String: Any]
        XCTAssertEqual(flip?["delivered"] as? Int, 1, "\(object["hooks"] ?? "none")")
        XCTAssertEqual(flip?["retried"] as? Int, 1)
        let page = try RawClient(port: admin, timeout: 5).exchange("GET /status HTTP/1.1\r\nHost: a\r\n\r\n").bodyText
        XCTAssertTrue(page.contains("<h2>Hooks</h2>"), "the page has a hooks section")
        XCTAssertEqual(received.value.count, 2)
    }

    func testBadHooksAreConfigErrors() throws {
        let blue = try startEcho(name: "blue"), green = try startEcho(name: "green"), canary = try startEcho(name: "canary")
        var json = try controlConfig(blue: blue, green: green, canary: canary)
        json = String(json.dropLast(2)) + #", "hooks": [ { "url": "ftp://x", "events": ["flipped"] } ] }"#
        let path = try writeFile("bad.json", json)
        let result = try ChildProcess.run(switchyard: ["check", "--config", path])
        XCTAssertTrue(result.stderr.contains(#"hooks[0].url: "ftp://x" is not an http:// or https:// URL"#), result.stderr)
        XCTAssertTrue(result.stderr.contains(#"hooks[0].events[0]: unknown event "flipped"; events: started, shadow_passed, step"#), result.stderr)
    }

    private func hmac(_ key: [UInt8], _ message: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count,
                     &out, &length)
            }
        }
        return out.map { String(format: "%02x", $0) }.joined()
    }
}
