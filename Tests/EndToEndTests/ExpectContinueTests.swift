// Expect: 100-continue: the client sends the head, gets 100 Continue (the proxy's own for a body
// it reads whole, see BodyBufferingTests; the upstream's, relayed, for one that streams),
// then sends the body and gets the final response.
import XCTest

final class ExpectContinueTests: EndToEndTestCase {
    func testHundredContinueThenBody() throws {
        let (proxy, _) = try startProxyWithEcho()
        let client = try connect(proxy)
        try client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        let interim = try client.readResponse(method: "POST")
        XCTAssertEqual(interim.status, 100)
        try client.send("hello world")
        let r = try client.readResponse(method: "POST")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try r.echo().body, "hello world")
        XCTAssertEqual(try client.exchange(get("/next")).status, 200, "the connection stays usable")
    }
}
