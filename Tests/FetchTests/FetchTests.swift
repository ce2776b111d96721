// The control plane's HTTP client against a one-answer server on loopback: what it sends, how
// it reads an answer, and the answers it refuses.
import Fetch
import Foundation
import Glibc
import Routing
import TestSupport
import XCTest

final class FetchTests: XCTestCase {
    /// The first request `server` received, as text.
    private func request(_ server: HTTPStandIn) -> String { server.requests(waitingFor: 1).first?.text ?? "" }

    private func url(_ port: UInt16, _ path: String = "/") -> HTTPURL {
        HTTPURL(secure: false, host: "127.0.0.1", port: port, path: path)
    }

    func testGetSendsFieldsAndReadsBody() throws {
        let server = try HTTPStandIn(always: Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello-extra".utf8))
        let response = try Fetch.perform(FetchRequest(path: "/latest/meta?x=1", headers: [("X-Token", "abc")]), to: url(server.port))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.bodyText, "hello", "the body ends at its Content-Length")
        XCTAssertEqual(response.header("content-type"), "text/plain")
        let request = request(server)
        XCTAssertTrue(request.hasPrefix("GET /latest/meta?x=1 HTTP/1.0\r\nHost: 127.0.0.1:\(server.port)\r\n"), request)
        XCTAssertTrue(request.contains("\r\nX-Token: abc\r\n"), request)
        XCTAssertTrue(request.contains("\r\nConnection: close\r\n\r\n"), request)
    }

    func testPutSendsBodyWithLength() throws {
        let server = try HTTPStandIn(always: Array("HTTP/1.0 200 OK\r\n\r\ntoken".utf8))
        let response = try Fetch.perform(FetchRequest(method: "PUT", path: "/t", body: Array("abc".utf8)), to: url(server.port))
        XCTAssertEqual(response.bodyText, "token", "without a length the body runs to the close")
        XCTAssertTrue(request(server).hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\nabc"), request(server))
    }

    func testAnswersThatAreRefused() throws {
        let cases: [(String, String)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "cut short"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "not a length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a length"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP status line"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP status line"),
            ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "without a colon"),
            ("HTTP/1.1 200 OK\r\n", "no complete HTTP head"),
        ]
        for (answer, reason) in cases {
            let server = try HTTPStandIn(always: Array(answer.utf8))
            XCTAssertThrowsError(try Fetch.perform(FetchRequest(path: "/"), to: url(server.port)), answer) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(answer): \(error)")
            }
        }
    }

    func testFieldsThatWouldBreakTheHeadAreNotSent() throws {
        let server = try HTTPStandIn(always: Array("HTTP/1.0 200 OK\r\n\r\n".utf8))
        defer { _ = try? Fetch.perform(FetchRequest(path: "/"), to: url(server.port)) }
        for request in [FetchRequest(path: "/", headers: [("X-Token", "a\r\nInjected: yes")]),
                        FetchRequest(path: "/", headers: [("Bad Name", "x")]),
                        FetchRequest(path: "/a b"), FetchRequest(method: "GET /x", path: "/")] {
            XCTAssertThrowsError(try Fetch.perform(request, to: url(server.port)))
        }
    }

    func testTooLargeAndRefusedConnections() throws {
        let big = Array("HTTP/1.0 200 OK\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 70_000)
        let server = try HTTPStandIn(always: big)
        XCTAssertThrowsError(try Fetch.perform(FetchRequest(path: "/"), to: url(server.port), maxBytes: 65_536)) { error in
            XCTAssertTrue("\(error)".contains("answer over 65536 bytes"), "\(error)")
            XCTAssertEqual((error as? FetchError)?.unreachable, false, "a server answered")
        }
        let (closed, port) = try Sockets.bound(listen: false)
        defer { close(closed) }
        XCTAssertThrowsError(try Fetch.perform(FetchRequest(path: "/"), to: url(port))) { error in
            XCTAssertTrue("\(error)".contains("cannot connect to 127.0.0.1:\(port)"), "\(error)")
            XCTAssertEqual((error as? FetchError)?.unreachable, true, "nothing answered")
        }
        let (silent, silentPort) = try Sockets.bound(listen: true)   // connects, never answers
        defer { close(silent) }
        XCTAssertThrowsError(try Fetch.perform(FetchRequest(path: "/"), to: url(silentPort), timeout: 0.2)) { error in
            XCTAssertEqual((error as? FetchError)?.unreachable, true, "not one byte came back: \(error)")
        }
    }

    func testURLs() {
        XCTAssertEqual(HTTPURL("http://169.254.169.254/latest/api/token"),
                       HTTPURL(secure: false, host: "169.254.169.254", port: 80, path: "/latest/api/token"))
        XCTAssertEqual(HTTPURL("https://sts.amazonaws.com"), HTTPURL(secure: true, host: "sts.amazonaws.com", port: 443, path: ""))
        XCTAssertEqual(HTTPURL("http://[::1]:8080?a=1#frag"), HTTPURL(secure: false, host: "::1", port: 8080, path: "/?a=1"))
        XCTAssertEqual(HTTPURL("http://[::1]:8080")?.authority, "[::1]:8080")
        for bad in ["ftp://x", "http://", "http://user@host/", "http://h:0/", "http://h:65536/", "http://h:x/", "http://a b/",
                    "http://::1/", "http://[::1/", "https://h/\n"] {
            XCTAssertNil(HTTPURL(bad), bad)
        }
    }
}
