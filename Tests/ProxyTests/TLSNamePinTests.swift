// The name an upstream's certificate must match is pinned on every verifying connection, and a
// pin OpenSSL refuses fails the connection instead of verifying the chain alone (a certificate
// of any name from a trusted CA would then have been accepted).
import Glibc
import TLS
import XCTest

final class TLSNamePinTests: XCTestCase {
    private var fds: [Int32] = [-1, -1]

    override func setUpWithError() throws {
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
    }

    override func tearDown() {
        for fd in fds where fd >= 0 { close(fd) }
    }

    func testTheConfiguredServerNameIsPinned() throws {
        let client = try TLSClient(TLSClientSettings(serverName: "api.example.com"))
        let c = try XCTUnwrap(client.connect(fd: fds[0], host: "10.0.0.7", resume: nil))
        XCTAssertEqual(c.verifiedName, "api.example.com")
    }

    func testAnAddressIsPinnedAsAnAddress() throws {
        let client = try TLSClient(TLSClientSettings())
        let c = try XCTUnwrap(client.connect(fd: fds[0], host: "127.0.0.1", resume: nil))
        XCTAssertEqual(c.verifiedName, "127.0.0.1")
    }

    func testAPinThatCannotBeSetRefusesTheConnection() throws {
        let client = try TLSClient(TLSClientSettings(serverName: "api.example.com"))
        var asked: [String] = []
        let refused = client.connect(fd: fds[0], host: "10.0.0.7", resume: nil) { _, name, isAddress in
            asked.append("\(name) \(isAddress)")
            return false
        }
        XCTAssertNil(refused)
        XCTAssertEqual(asked, ["api.example.com false"])
    }

    func testNothingIsPinnedWhenVerificationIsOff() throws {
        let client = try TLSClient(TLSClientSettings(serverName: "api.example.com", verify: false))
        let c = try XCTUnwrap(client.connect(fd: fds[0], host: "10.0.0.7", resume: nil) { _, _, _ in false })
        XCTAssertNil(c.verifiedName)
    }
}
