// Path rewriting into a caller buffer.
import Routing
import XCTest

final class RewriteTests: XCTestCase {
    /// Applies `rewrite` through the Route and through the Snapshot's table, which must agree.
    private func apply(_ rewrite: Rewrite?, _ path: String, capacity: Int = 256) -> String? {
        let r = route(rewrite: rewrite)
        let snap = snapshot([r])
        let decision = decide(snap, TestRequest(path: path), random: 0)
        var out = [UInt8](repeating: 0, count: capacity)
        var fromTable = [UInt8](repeating: 0, count: capacity)
        let n = Array(path.utf8).withUnsafeBytes { p in out.withUnsafeMutableBytes { r.rewrite(path: p, into: $0) } }
        let m = Array(path.utf8).withUnsafeBytes { p in
            fromTable.withUnsafeMutableBytes { snap.rewrite(path: p, for: decision, into: $0) }
        }
        XCTAssertEqual(n, m, path)
        XCTAssertEqual(n.map { Array(out[0..<$0]) }, m.map { Array(fromTable[0..<$0]) }, path)
        return n.map { String(decoding: out[0..<$0], as: UTF8.self) }
    }

    func testStripPrefix() {
        let strip = Rewrite.stripPrefix(b("/api"))
        let cases: [(path: String, expected: String)] = [
            ("/api/users", "/users"),
            ("/api", "/"),
            ("/api/", "/"),
            ("/apiv2", "/v2"),
            ("/other", "/other"),     // a path without the prefix is left alone
        ]
        for c in cases { XCTAssertEqual(apply(strip, c.path), c.expected, c.path) }
        XCTAssertEqual(apply(.stripPrefix(b("/api/")), "/api/users"), "/users")
    }

    func testPrefix() {
        XCTAssertEqual(apply(.prefix(b("/v1")), "/users"), "/v1/users")
        XCTAssertEqual(apply(.prefix(b("/v1")), "/"), "/v1/")
    }

    func testNoRewriteCopiesAndSmallBufferFails() {
        XCTAssertEqual(apply(nil, "/same"), "/same")
        XCTAssertNil(apply(.prefix(b("/v1")), "/users", capacity: 8))
        XCTAssertEqual(apply(.prefix(b("/v1")), "/users", capacity: 9), "/v1/users")
        XCTAssertNil(apply(.stripPrefix(b("/api")), "/apiv2", capacity: 2))
        XCTAssertEqual(Rewrite.prefix(b("/v1")).maxRewrittenCount(pathCount: 6), 9)
        XCTAssertEqual(Rewrite.stripPrefix(b("/api")).maxRewrittenCount(pathCount: 5), 6)
    }
}
