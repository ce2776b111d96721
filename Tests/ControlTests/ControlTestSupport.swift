// The in-process fixture: named HTTP upstreams, a ProxyServer built from a config file and the
// control server on a temporary socket; plus a keep-alive HTTP client through the proxy.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
import Proxy
import Reactor
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

/// An HTTP/1.1 upstream that answers every request with `X-Name: <name>` and its name as the
/// body. `?delay=MS` delays the answer; `status` sets the status of every answer.
final class TestUpstream: @unchecked Sendable {
    let name: String
    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private var open: Set<Int32> = []
    private var _status = 200

    var endpoint: String { "127.0.0.1:\(port)" }

    var status: Int {
        get { lock.withLock { _status } }
        set { lock.withLock { _status = newValue } }
    }

    /// Request heads received so far.
    var requests: [String] { lock.withLock { heads } }

    /// Connections open to this upstream now.
    var openConnections: Int { lock.withLock { open.count } }

    init(name: String) throws {
        self.name = name
        let (fd, port) = try Sockets.bound(listen: true, backlog: 512)
        self.fd = fd
        self.port = port
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        lock.withLock { for c in open { shutdown(c, Int32(SHUT_RDWR)) } }
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                close(fd)
                return
            }
            lock.withLock { _ = open.insert(c) }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ c: Int32) {
        defer {
            lock.withLock { _ = open.remove(c) }
            close(c)
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            while Sockets.headEnd(buffer) == nil {
                let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
            }
            let end = Sockets.headEnd(buffer)!
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            let status = lock.withLock { () -> Int in
                heads.append(head)
                return _status
            }
            let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            if let range = target.range(of: "delay="), let ms = Int(target[range.upperBound...].prefix { $0.isNumber }) {
                usleep(UInt32(ms * 1000))
            }
            let response = "HTTP/1.1 \(status) X\r\nContent-Length: \(name.utf8.count)\r\nX-Name: \(name)\r\n\r\n\(name)"
            guard Sockets.send(c, Array(response.utf8)) else { return }
        }
    }
}

struct TestResponse {
    var status: Int
    var headers: [String: String]
    var body: String
    /// The upstream that answered (its X-Name header).
    var name: String? { headers["x-name"] }
}

/// A keep-alive HTTP/1.1 client through the proxy (responses framed by Content-Length).
final class HTTPTestClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, timeout: Int = 5) throws {
        fd = try Sockets.connect(port: port)
        Sockets.setTimeouts(fd, seconds: Double(timeout))
    }

    deinit { close(fd) }

    func get(_ path: String = "/", headers: [String] = []) throws -> TestResponse {
        let request = "GET \(path) HTTP/1.1\r\nHost: shop.test\r\n" + headers.map { "\($0)\r\n" }.joined() + "\r\n"
        guard Sockets.send(fd, Array(request.utf8)) else { throw TestError("send failed") }
        var chunk = [UInt8](repeating: 0, count: 16_384)
        func fill() throws {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw TestError("proxy closed or timed out (errno \(errno))") }
            buffer.append(contentsOf: chunk[0..<n])
        }
        while Sockets.headEnd(buffer) == nil { try fill() }
        let end = Sockets.headEnd(buffer)!
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count < length { try fill() }
        let body = String(decoding: buffer[0..<length], as: UTF8.self)
        buffer.removeFirst(length)
        return TestResponse(status: status, headers: headers, body: body)
    }
}

/// Upstreams, proxy and control socket for one test; `stop()` (tearDown) ends them all.
final class ControlFixture {
    struct Options {
        var workers = 2
        /// `"warmup": {...}` members for the checkout upstream, or nil.
        var warmup: String? = nil
        /// Green's endpoints instead of the green upstream's.
        var greenEndpoints: [String]? = nil
        /// More endpoints for the canary pool.
        var extraCanaryEndpoints: [String] = []
        var stateFile = true
        var mode: String? = nil
    }

    let dir: String
    let blue: TestUpstream
    let green: TestUpstream
    let canary: TestUpstream
    let shadow: TestUpstream
    var options: Options
    let configPath: String
    var socketPath: String { dir + "/control.sock" }
    var statePath: String { dir + "/state.json" }
    private(set) var state: RuntimeState!
    private(set) var server: ProxyServer!
    private(set) var control: ControlServer!
    /// Lines the runtime state logged.
    let logged = LogLines()

    init(_ configure: (inout Options) -> Void = { _ in }) throws {
        dir = try TemporaryDirectory.make(prefix: "sy-ctl")
        blue = try TestUpstream(name: "blue")
        green = try TestUpstream(name: "green")
        canary = try TestUpstream(name: "canary")
        shadow = try TestUpstream(name: "shadow")
        options = Options()
        configure(&options)
        configPath = dir + "/switchyard.json"
        try writeConfig()
        try start()
    }

    /// The fixture's config; `stableWeight`/`canaryWeight` and `live` vary in reload tests.
    func configText(live: String = "blue", stableWeight: Int = 100, canaryWeight: Int = 0, extraListener: Bool = false,
                    extraRoute: String = "") -> String {
        let greens = (options.greenEndpoints ?? [green.endpoint]).map { "\"\($0)\"" }.joined(separator: ", ")
        let canaries = ([canary.endpoint] + options.extraCanaryEndpoints).map { "\"\($0)\"" }.joined(separator: ", ")
        let warmup = options.warmup.map { ", \"warmup\": { \($0) }" } ?? ""
        let state = options.stateFile ? ", \"stateFile\": \"\(statePath)\"" : ""
        let mode = options.mode.map { ", \"mode\": \"\($0)\"" } ?? ""
        let listeners = extraListener ? #"[{ "address": "127.0.0.1:0" }, { "address": "127.0.0.2:0" }]"# : #"[{ "address": "127.0.0.1:0" }]"#
        return """
        {
          "workers": \(options.workers),
          "listeners": \(listeners),
          "upstreams": {
            "checkout": { "blue": { "endpoints": ["\(blue.endpoint)"] }, "green": { "endpoints": [\(greens)] },
                          "live": "\(live)"\(warmup) },
            "canary": { "endpoints": [\(canaries)] },
            "shadow": { "endpoints": ["\(shadow.endpoint)"] }
          },
          "routes": [
            \(extraRoute)
            { "name": "shop",
              "split": [ { "variant": "stable", "upstream": "checkout", "weight": \(stableWeight) },
                         { "variant": "canary", "upstream": "canary", "weight": \(canaryWeight) } ],
              "override": { "trustedSources": ["0.0.0.0/0", "::/0"] } }
          ],
          "control": { "socket": "\(socketPath)"\(mode)\(state) }
        }
        """
    }

    func writeConfig(_ text: String? = nil) throws {
        try Data((text ?? configText()).utf8).write(to: URL(fileURLWithPath: configPath))
    }

    /// Loads the config file and the state file, starts the proxy and the control socket.
    func start() throws {
        let loaded = try ConfigLoader.load(path: configPath)
        let log = logged
        state = try RuntimeState(loaded: loaded, source: .file(configPath), log: { log.append($0) })
        control = try ControlServer(loaded.config.control!)
        server = try ProxyServer(settings: state.config.proxySettings, snapshot: state.snapshot)
        state.attach(server)
        server.start()
        control.start(ControlEngine(state))
    }

    /// Stops the proxy and the control socket (the upstreams keep running).
    func stopProxy() {
        control?.stop()
        server?.shutdown()
    }

    /// Stops and starts again from the same files: a restart.
    func restart() throws {
        stopProxy()
        try start()
    }

    func stop() {
        stopProxy()
        for u in [blue, green, canary, shadow] { u.stop() }
        TemporaryDirectory.remove(dir)
    }

    var port: UInt16 { server.boundAddresses[0].port }

    func client(timeout: Double? = 20) throws -> ControlClient { try ControlClient(path: socketPath, timeout: timeout) }

    func http() throws -> HTTPTestClient { try HTTPTestClient(port: port) }

    /// One command on a new connection.
    func command(_ line: String) throws -> ControlValue { try client().command(line) }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

extension ControlValue {
    var ok: Bool { self["ok"]?.bool == true }
    var error: String { self["error"]?.string ?? "" }
    var version: Int { self["version"]?.int ?? -1 }
}

/// Fails unless `reply` is ok:true; returns it.
@discardableResult
func expectOK(_ reply: ControlValue, file: StaticString = #filePath, line: UInt = #line) -> ControlValue {
    XCTAssertTrue(reply.ok, "expected ok, got \(reply.json)", file: file, line: line)
    return reply
}

/// Fails unless `reply` is ok:false with an error containing `fragment`.
func expectError(_ reply: ControlValue, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(reply.ok, "expected an error, got \(reply.json)", file: file, line: line)
    XCTAssertTrue(reply.error.contains(fragment), "error \(reply.error.debugDescription) lacks \(fragment.debugDescription)",
                  file: file, line: line)
}
