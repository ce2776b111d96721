// Hosts and paths as routes read them: a trailing dot and letter case do not change a host;
// path prefixes match the normalised path (unreserved percent-encodings decoded, dot segments
// removed, "//" kept).
import Routing
import XCTest

final class NormalizationTests: XCTestCase {
    func testNormalizedPath() {
        let cases: [(String, String)] = [
            ("/", "/"), ("/a/b", "/a/b"), ("/r0/../fast", "/fast"), ("/a/./b", "/a/b"), ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"), ("/..", "/"), ("/../../x", "/x"), ("/a//b", "/a//b"), ("/a//../b", "/a/b"),
            ("/%66ast", "/fast"), ("/%2e%2e/fast", "/fast"), ("/%2E./fast", "/fast"), ("/a%2fb", "/a%2fb"),
            ("/a%2Fb/../c", "/c"), ("/%7euser", "/~user"), ("/%zz", "/%zz"), ("/%4", "/%4"), ("/.hidden", "/.hidden"),
            ("/a/..b", "/a/..b"), ("*", "*"),
        ]
        for (path, expected) in cases {
            XCTAssertEqual(normalizedPath(path), expected, path)
        }
    }

    func testPrefixMatchesTheNormalisedPath() {
        let routes = [
            route("fast", match: Match(pathPrefix: b("/fast")), target: .upstream(1)),
            route("r0", match: Match(pathPrefix: b("/r0")), target: .upstream(2)),
            route("rest", target: .upstream(0)),
        ]
        let snap = snapshot(routes)
        let cases: [(String, Int)] = [
            ("/r0/../fast", 0), ("/r0/%2e%2e/fast", 0), ("/%66ast/x", 0), ("/r0/x", 1), ("/r0//..//fast", 1),
            ("/x/../r0", 1), ("/fast/../r0", 1), ("/other", 2),
        ]
        for (path, expected) in cases {
            XCTAssertEqual(decide(snap, TestRequest(path: path), random: 0).route, expected, path)
        }
    }

    func testHostWithTrailingDotAndAnyCase() {
        let routes = [
            route("a", match: Match(hosts: [.exact(b("a.example"))]), target: .upstream(1)),
            route("w", match: Match(hosts: [.suffix(b(".w.example"))]), target: .upstream(2)),
            route("rest", target: .upstream(0)),
        ]
        let snap = snapshot(routes)
        let cases: [(String, Int)] = [
            ("a.example", 0), ("a.example.", 0), ("A.Example.", 0), ("a.example.:8080", 0), ("a.example..", 2),
            ("x.w.example.", 1), ("X.W.EXAMPLE", 1), ("w.example.", 2), (".", 2),
        ]
        for (host, expected) in cases {
            XCTAssertEqual(decide(snap, TestRequest(host: host), random: 0).route, expected, host)
        }
    }
}
