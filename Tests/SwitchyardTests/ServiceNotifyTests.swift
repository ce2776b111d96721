// The readiness datagram reaches a Unix datagram socket at a path and in the abstract namespace.
import Foundation
import Glibc
import XCTest
@testable import switchyard

final class ServiceNotifyTests: XCTestCase {
    private func receiver(_ name: String, abstract: Bool) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes.insert(0, at: 0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard rc == 0 else { throw TestError("bind: errno \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    func testADatagramReachesAPathAndAnAbstractName() throws {
        let path = NSTemporaryDirectory() + "/sy-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = try receiver(path, abstract: false)
        defer { close(fd); unlink(path) }
        XCTAssertTrue(ServiceNotify.send("READY=1\n", to: path))
        XCTAssertEqual(receive(fd), "READY=1\n")

        let name = "sy-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let abstract = try receiver(name, abstract: true)
        defer { close(abstract) }
        XCTAssertTrue(ServiceNotify.send("STOPPING=1\n", to: "@" + name))
        XCTAssertEqual(receive(abstract), "STOPPING=1\n")

        XCTAssertFalse(ServiceNotify.send("READY=1\n", to: "relative/path"), "only absolute paths and @names")
        XCTAssertFalse(ServiceNotify.send("READY=1\n", to: nil))
    }
}

private struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
