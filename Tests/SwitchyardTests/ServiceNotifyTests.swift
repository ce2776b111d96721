// The readiness datagram reaches a Unix datagram socket at a path and in the abstract namespace.
import Foundation
import Glibc
import TestSupport
import XCTest
@testable import switchyard

final class ServiceNotifyTests: XCTestCase {
    func testADatagramReachesAPathAndAnAbstractName() throws {
        let path = NSTemporaryDirectory() + "/sy-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = try UnixSockets.datagramReceiver(path: path, timeout: 5)
        defer { close(fd); unlink(path) }
        XCTAssertTrue(ServiceNotify.send("READY=1\n", to: path))
        XCTAssertEqual(UnixSockets.receiveDatagram(fd), "READY=1\n")

        let name = "sy-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let abstract = try UnixSockets.datagramReceiver(path: "@" + name, timeout: 5)
        defer { close(abstract) }
        XCTAssertTrue(ServiceNotify.send("STOPPING=1\n", to: "@" + name))
        XCTAssertEqual(UnixSockets.receiveDatagram(abstract), "STOPPING=1\n")

        XCTAssertFalse(ServiceNotify.send("READY=1\n", to: "relative/path"), "only absolute paths and @names")
        XCTAssertFalse(ServiceNotify.send("READY=1\n", to: nil))
    }
}

private struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
