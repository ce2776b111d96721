// A client for the control socket that shares no code with the one the proxy ships: a command
// line out, a JSON reply line back, parsed by Foundation.
import Foundation
import Glibc

/// One connection to a control socket.
public final class ControlLineClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String, timeout: Double = 20) throws {
        fd = try UnixSockets.connect(path: path, timeout: timeout)
    }

    deinit { Glibc.close(fd) }

    /// Sends `line` and returns its reply, parsed.
    public func command(_ line: String) throws -> [String: Any] {
        let out = Array((line + "\n").utf8)
        try out.withUnsafeBytes { try Sockets.sendAll(fd, $0) }
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let reply = Data(buffer[0..<newline])
                buffer.removeSubrange(0...newline)
                guard let object = try JSONSerialization.jsonObject(with: reply) as? [String: Any] else {
                    throw TestError("not a JSON object: \(String(decoding: reply, as: UTF8.self))")
                }
                return object
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = try chunk.withUnsafeMutableBytes { try Sockets.receive(fd, into: $0) }
            buffer += chunk[0..<n]
        }
    }
}
