// W3C trace context: a valid traceparent is passed on untouched (with its tracestate); a missing
// or invalid one is replaced by a new trace when tracing.startWhenMissing is on, and an invalid
// one is dropped when it is off; the trace id is the access log's traceId.
import Foundation
import TestSupport
import XCTest

final class TracingTests: EndToEndTestCase {
    private let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    private func start(startWhenMissing: Bool, log: String) throws -> RunningProxy {
        let echo = try startEcho(name: "a")
        return try startProxy(json: """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "upstreams": { "app": { "endpoints": ["\(echo.endpoint)"] } },
          "routes": [ { "name": "web", "upstream": "app" } ],
          "accessLog": { "path": "\(log)" },
          "tracing": { "startWhenMissing": \(startWhenMissing) }
        }
        """)
    }

    /// The traceparent and tracestate fields the upstream received.
    private func forwarded(_ c: RawClient, _ headers: [String]) throws -> (parent: [String], state: [String]) {
        let r = try c.exchange(get("/", headers))
        XCTAssertEqual(r.status, 200)
        let echo = try r.echo()
        return (echo.headers.filter { $0.name.lowercased() == "traceparent" }.map(\.value),
                echo.headers.filter { $0.name.lowercased() == "tracestate" }.map(\.value))
    }

    private func traceIDs(_ log: String, count: Int) throws -> [String?] {
        var ids: [String?] = []
        try waitUntil(timeout: 10, interval: 0.02) {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            ids = try text.split(separator: "\n").map { line in
                (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["traceId"] as? String
            }
            return ids.count >= count
        }
        return ids
    }

    func testPassedOnStartedAndInvalidReplaced() throws {
        let log = try temporaryDirectory() + "/access.log"
        let proxy = try start(startWhenMissing: true, log: log)
        let c = try connect(proxy)

        // Valid: passed on as it came, tracestate too.
        let passed = try forwarded(c, ["traceparent: \(valid)", "tracestate: congo=t61rcWkgMzE"])
        XCTAssertEqual(passed.parent, [valid])
        XCTAssertEqual(passed.state, ["congo=t61rcWkgMzE"])
        // A later version with more fields is read as version 00 and passed on.
        let future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next"
        XCTAssertEqual(try forwarded(c, ["traceparent: \(future)"]).parent, [future])

        // Missing: a new trace, sampled.
        let started = try forwarded(c, [])
        XCTAssertEqual(started.parent.count, 1)
        let new = try XCTUnwrap(started.parent.first)
        XCTAssertNotNil(new.range(of: #"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$"#, options: .regularExpression), new)
        XCTAssertFalse(new.contains("-00000000000000000000000000000000-"))

        // Invalid ones are replaced, and their tracestate goes with them.
        let invalid = [
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",   // uppercase
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",   // zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   // zero parent id
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   // version ff
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",   // 00 with more
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",   // short parent id
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   // separator
            "garbage",
        ]
        for value in invalid {
            let got = try forwarded(c, ["traceparent: \(value)", "tracestate: a=b"])
            XCTAssertEqual(got.parent.count, 1, value)
            XCTAssertNotEqual(got.parent.first, value)
            XCTAssertNotNil(got.parent.first?.range(of: #"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$"#, options: .regularExpression), value)
            XCTAssertEqual(got.state, [], value)
        }
        // Two traceparent fields are invalid too.
        XCTAssertNotEqual(try forwarded(c, ["traceparent: \(valid)", "traceparent: \(valid)"]).parent, [valid, valid])

        // The access log carries each trace id: the client's, and the one started.
        let ids = try traceIDs(log, count: 3 + invalid.count + 1)
        XCTAssertEqual(ids[0], "0af7651916cd43dd8448eb211c80319c")
        XCTAssertEqual(ids[2], String(new.dropFirst(3).prefix(32)))
    }

    func testWithoutStartingAnInvalidTraceIsDroppedAndNoneIsMade() throws {
        let log = try temporaryDirectory() + "/access.log"
        let proxy = try start(startWhenMissing: false, log: log)
        let c = try connect(proxy)
        XCTAssertEqual(try forwarded(c, ["traceparent: \(valid)"]).parent, [valid])
        let none = try forwarded(c, [])
        XCTAssertEqual(none.parent, [])
        let dropped = try forwarded(c, ["traceparent: garbage", "tracestate: a=b"])
        XCTAssertEqual(dropped.parent, [])
        XCTAssertEqual(dropped.state, [])
        let ids = try traceIDs(log, count: 3)
        XCTAssertEqual(ids, ["0af7651916cd43dd8448eb211c80319c", nil, nil])
        // X-Request-Id as before: the proxy's own when the client sent none.
        let r = try c.exchange(get("/"))
        XCTAssertEqual(try r.echo().headers.filter { $0.name == "X-Request-Id" }.count, 1)
    }
}
