// `hostHeader`: the Host an upstream (or one color) is sent instead of the client's, which goes
// in X-Forwarded-Host; shadow copies and warm-up GETs carry the Host of the upstream they go to.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

final class HostHeaderTests: XCTestCase {
    private var stops: [() -> Void] = []

    override func tearDown() {
        for stop in stops.reversed() { stop() }
        stops.removeAll()
    }

    private func upstream(_ name: String) throws -> TestUpstream {
        let u = try TestUpstream(name: name)
        stops.append { u.stop() }
        return u
    }

    /// `fn` (named `fn.test`, Host fn.example.net) mirrored to `shadow` (its own Host, and a
    /// hostSuffix its hostHeader overrides); `bg`, whose blue color sets its own Host and whose
    /// green takes the upstream's; `plain` without one.
    private func start(fn: TestUpstream, shadow: TestUpstream, blue: TestUpstream, green: TestUpstream,
                       plain: TestUpstream) throws -> NameFixture {
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [fn.port])
        let f = try NameFixture(config: { dir in """
            {
              "workers": 1,
              "listeners": [{ "address": "127.0.0.1:0" }],
              "upstreams": {
                "fn": { "endpoints": ["fn.test:443"], "hostHeader": "fn.example.net" },
                "shadow": { "endpoints": ["\(shadow.endpoint)"], "hostHeader": "shadow.example.net:8443" },
                "bg": { "hostHeader": "bg.example.net", "live": "blue",
                        "blue": { "endpoints": ["\(blue.endpoint)"], "hostHeader": "blue.example.net" },
                        "green": { "endpoints": ["\(green.endpoint)"] },
                        "warmup": { "path": "/warm", "requests": 2 } },
                "plain": { "endpoints": ["\(plain.endpoint)"] }
              },
              "routes": [
                { "name": "fn", "match": { "pathPrefix": "/fn" }, "upstream": "fn",
                  "mirror": [{ "upstream": "shadow", "percent": 100, "hostSuffix": ".shadow" }] },
                { "name": "bg", "match": { "pathPrefix": "/bg" }, "upstream": "bg" },
                { "name": "plain", "upstream": "plain" }
              ],
              "control": { "socket": "\(dir)/control.sock" }
            }
            """ }, resolver: resolver, control: true)
        stops.append { f.stop() }
        return f
    }

    /// The values of `name` in a recorded request head.
    private func values(_ name: String, in head: String) -> [String] {
        head.components(separatedBy: "\r\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { return nil }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }

    func testTheUpstreamGetsItsHostAndTheClientsGoesInXForwardedHost() throws {
        let fn = try upstream("fn"), shadow = try upstream("shadow"), blue = try upstream("blue"),
            green = try upstream("green"), plain = try upstream("plain")
        let f = try start(fn: fn, shadow: shadow, blue: blue, green: green, plain: plain)
        let client = try f.http()

        XCTAssertEqual(try client.get("/fn/x").name, "fn")
        let head = try XCTUnwrap(fn.requests.last)
        XCTAssertEqual(values("Host", in: head), ["fn.example.net"], head)
        XCTAssertEqual(values("X-Forwarded-Host", in: head), ["shop.test"], head)

        // The shadow copy carries the shadow's own Host (not the primary's, not the suffix).
        XCTAssertTrue(waitUntil(timeout: 10) { !shadow.requests.isEmpty }, "the copy arrived")
        let copy = try XCTUnwrap(shadow.requests.last)
        XCTAssertEqual(values("Host", in: copy), ["shadow.example.net:8443"], copy)
        XCTAssertEqual(values("X-Forwarded-Host", in: copy), ["shop.test"], copy)
        XCTAssertEqual(values("X-Switchyard-Shadow", in: copy), ["1"], copy)

        // A color's own Host wins over the upstream's.
        XCTAssertEqual(try client.get("/bg").name, "blue")
        XCTAssertEqual(values("Host", in: try XCTUnwrap(blue.requests.last)), ["blue.example.net"])

        // Without hostHeader the client's Host passes, as before.
        XCTAssertEqual(try client.get("/other").name, "plain")
        let passed = try XCTUnwrap(plain.requests.last)
        XCTAssertEqual(values("Host", in: passed), ["shop.test"], passed)
        XCTAssertEqual(values("X-Forwarded-Host", in: passed), ["shop.test"], passed)
    }

    func testAnHTTP10RequestWithoutHostStillGetsTheUpstreamsHost() throws {
        let fn = try upstream("fn"), shadow = try upstream("shadow"), blue = try upstream("blue"),
            green = try upstream("green"), plain = try upstream("plain")
        let f = try start(fn: fn, shadow: shadow, blue: blue, green: green, plain: plain)
        let fd = try Sockets.connect(port: f.port)
        defer { close(fd) }
        Sockets.setTimeouts(fd, seconds: 10)
        XCTAssertTrue(Sockets.send(fd, Array("GET /fn HTTP/1.0\r\n\r\n".utf8)))
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        XCTAssertTrue(String(decoding: response, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        let head = try XCTUnwrap(fn.requests.last)
        XCTAssertEqual(values("Host", in: head), ["fn.example.net"], head)
        XCTAssertEqual(values("X-Forwarded-Host", in: head), [], "the client sent no Host")
    }

    func testWarmupGETsCarryTheHostOfTheColorAboutToGoLive() throws {
        let fn = try upstream("fn"), shadow = try upstream("shadow"), blue = try upstream("blue"),
            green = try upstream("green"), plain = try upstream("plain")
        let f = try start(fn: fn, shadow: shadow, blue: blue, green: green, plain: plain)
        let reply = try f.command("flip bg")
        XCTAssertTrue(reply.ok, reply.json)
        let warmed = green.requests.filter { $0.hasPrefix("GET /warm ") }
        XCTAssertEqual(warmed.count, 2)
        XCTAssertTrue(warmed.allSatisfy { values("Host", in: $0) == ["bg.example.net"] }, "\(warmed)")
        XCTAssertEqual(try f.http().get("/bg").name, "green")
        XCTAssertEqual(values("Host", in: try XCTUnwrap(green.requests.last)), ["bg.example.net"])
    }
}
