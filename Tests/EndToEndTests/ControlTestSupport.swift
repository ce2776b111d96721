// Helpers for the control-socket end-to-end tests: a config with a blue/green upstream and a
// control section, a line client for the Unix socket, and `switchyard ctl` runs.
import Foundation
import Glibc
import XCTest

/// One connection to a control socket: a command line out, a JSON reply line back.
final class ControlLineClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(path: String, timeout: Double = 20) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw HarnessError("connect \(path): errno \(e)")
        }
        Sockets.setTimeouts(fd, seconds: timeout)
    }

    deinit { Glibc.close(fd) }

    /// Sends `line` and returns its reply, parsed.
    func command(_ line: String) throws -> [String: Any] {
        let out = Array((line + "\n").utf8)
        try out.withUnsafeBytes { try Sockets.sendAll(fd, $0) }
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let reply = Data(buffer[0..<newline])
                buffer.removeSubrange(0...newline)
                guard let object = try JSONSerialization.jsonObject(with: reply) as? [String: Any] else {
                    throw HarnessError("not a JSON object: \(String(decoding: reply, as: UTF8.self))")
                }
                return object
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = try chunk.withUnsafeMutableBytes { try Sockets.receive(fd, into: $0) }
            buffer += chunk[0..<n]
        }
    }
}

extension EndToEndTestCase {
    /// A proxy in front of `blue`/`green` (the colors of `checkout`) and `canary`, route `shop`
    /// splitting stable (checkout) / canary, with a control socket and state file in the
    /// test's directory.
    func controlConfig(blue: EchoUpstream, green: EchoUpstream, canary: EchoUpstream, live: String = "blue",
                       stable: Int = 100, canaryWeight: Int = 0, workers: Int = 2, warmup: String? = nil) throws -> String {
        let dir = try temporaryDirectory()
        let warm = warmup.map { ", \"warmup\": { \($0) }" } ?? ""
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": \(workers),
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": {
            "checkout": { "blue": { "endpoints": ["\(blue.endpoint)"] }, "green": { "endpoints": ["\(green.endpoint)"] },
                          "live": "\(live)"\(warm) },
            "canary": { "endpoints": ["\(canary.endpoint)"] }
          },
          "routes": [
            { "name": "shop", "split": [ { "variant": "stable", "upstream": "checkout", "weight": \(stable) },
                                         { "variant": "canary", "upstream": "canary", "weight": \(canaryWeight) } ],
              "override": { "trustedSources": ["0.0.0.0/0", "::/0"] } }
          ],
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
        }
        """
    }

    func controlSocket() throws -> String { try temporaryDirectory() + "/control.sock" }

    /// Runs `switchyard ctl --socket SOCKET ARGS...`.
    func ctl(_ args: [String]) throws -> (termination: Termination, stdout: String, stderr: String) {
        try ChildProcess.run(switchyard: ["ctl", "--socket", try controlSocket()] + args)
    }

    /// Who answered a GET through the proxy (the echo's name).
    func servedBy(_ proxy: RunningProxy, _ extra: [String] = []) throws -> String? {
        let r = try connect(proxy).exchange(get("/", extra))
        return r.status == 200 ? r.header("X-Echo-Name") : "status \(r.status)"
    }
}
