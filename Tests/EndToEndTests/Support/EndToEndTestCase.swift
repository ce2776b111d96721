// The skeleton every end-to-end test shares: start echo upstreams and in-test servers, write a
// config, start the real proxy on port 0, talk raw HTTP/1.1 to it; tearDown kills every process
// and removes every file the test made, whether it passed or not.
import Foundation
import Glibc
import TestSupport
import XCTest

/// A `switchyard echo` upstream.
struct EchoUpstream {
    let process: ChildProcess
    let port: UInt16
    var endpoint: String { "127.0.0.1:\(port)" }
}

/// A running proxy.
struct RunningProxy {
    let process: ChildProcess
    let port: UInt16
    let configPath: String
}

/// What the proxy is started with; every value can be changed per test.
struct ProxyConfig {
    var workers = 1
    var connectMs = 1000
    var headerMs = 2000
    var responseMs = 3000
    var idleMs = 5000
    var drainMs = 5000
    var maxHeaderBytes = 16384
    var maxUriBytes = 8192
    var maxBodyBytes = 0
    /// Upstream name to endpoints ("host:port").
    var upstreams: [(name: String, endpoints: [String])] = []
    /// Route objects as JSON; default: one route to the first upstream.
    var routes: [String]? = nil
    /// The admin section as JSON, e.g. `{ "address": "127.0.0.1:0" }`; nil: no admin listener.
    var admin: String? = nil
    /// More members of every upstream object, e.g. `"outlierDetection": false`.
    var upstreamExtra = ""

    init(upstreams: [(name: String, endpoints: [String])] = []) { self.upstreams = upstreams }

    init(endpoints: [String]) { self.upstreams = [("app", endpoints)] }

    var json: String {
        let ups = upstreams.map { u in
            "\"\(u.name)\": { \"endpoints\": [\(u.endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]"
                + (upstreamExtra.isEmpty ? "" : ", \(upstreamExtra)") + " }"
        }.joined(separator: ",\n    ")
        let rs = routes ?? ["{ \"name\": \"default\", \"upstream\": \"\(upstreams.first?.name ?? "app")\" }"]
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": \(workers),
          "timeouts": { "connectMs": \(connectMs), "headerMs": \(headerMs), "responseMs": \(responseMs),
                        "idleMs": \(idleMs), "drainMs": \(drainMs) },
          "limits": { "maxHeaderBytes": \(maxHeaderBytes), "maxUriBytes": \(maxUriBytes), "maxBodyBytes": \(maxBodyBytes) },
          "upstreams": {
            \(ups)
          },
          "routes": [ \(rs.joined(separator: ", ")) ]\(admin.map { ",\n  \"admin\": \($0)" } ?? "")
        }
        """
    }
}

class EndToEndTestCase: XCTestCase {
    private var processes: [ChildProcess] = []
    private var servers: [RawServer] = []
    private var sockets: [Int32] = []
    private var tempDir: String?

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded {
            // What the processes said helps more than the assertion alone.
            for p in processes {
                print("--- switchyard \(p.arguments.joined(separator: " ")) (\(p.poll()?.description ?? "running"))\n\(p.stderr)")
            }
        }
        for s in servers { s.stop() }
        servers.removeAll()
        for p in processes { p.kill() }
        processes.removeAll()
        for fd in sockets { Glibc.close(fd) }
        sockets.removeAll()
        if let tempDir { TemporaryDirectory.remove(tempDir) }
        tempDir = nil
        super.tearDown()
    }

    // MARK: files

    /// This test's own temporary directory (removed in tearDown).
    func temporaryDirectory() throws -> String {
        if let tempDir { return tempDir }
        let dir = try TemporaryDirectory.make(prefix: "switchyard-e2e")
        tempDir = dir
        return dir
    }

    /// Writes `text` to a file in the test's directory and returns its path.
    func writeFile(_ name: String, _ text: String) throws -> String {
        let path = try temporaryDirectory() + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: processes

    /// Tracks a process so tearDown kills it.
    func adopt(_ p: ChildProcess) -> ChildProcess {
        processes.append(p)
        return p
    }

    func startEcho(name: String = "echo", file: StaticString = #filePath, line: UInt = #line) throws -> EchoUpstream {
        let p = adopt(try ChildProcess(switchyard: ["echo", "--listen", "127.0.0.1:0", "--name", name]))
        guard let text = p.waitForStderrLine(containing: "listening on "), let port = Self.port(after: "listening on ", in: text) else {
            p.kill()
            XCTFail("echo upstream '\(name)' did not start: \(p.stderr)", file: file, line: line)
            throw TestError("echo upstream did not start")
        }
        return EchoUpstream(process: p, port: port)
    }

    /// Starts the proxy with `config` and waits for its listening line.
    func startProxy(_ config: ProxyConfig, stackKB: Int? = nil, openFiles: Int? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> RunningProxy {
        try startProxy(json: config.json, stackKB: stackKB, openFiles: openFiles, file: file, line: line)
    }

    /// `stackKB` starts the proxy with that stack size limit (threads get it as their stack),
    /// so unbounded recursion on the data path shows up as a crash.
    /// `openFiles` starts it with that descriptor limit (RLIMIT_NOFILE).
    /// `environment`: variables set (or removed, nil) for the proxy process.
    func startProxy(json: String, stackKB: Int? = nil, openFiles: Int? = nil, environment: [String: String?] = [:],
                    file: StaticString = #filePath, line: UInt = #line) throws -> RunningProxy {
        let path = try writeFile("proxy-\(processes.count).json", json)
        let p: ChildProcess
        if stackKB != nil || openFiles != nil {
            let limits = (stackKB.map { ["ulimit -s \($0)"] } ?? []) + (openFiles.map { ["ulimit -n \($0)"] } ?? [])
            p = adopt(try ChildProcess(executable: "/bin/sh", arguments: [
                "-c", limits.joined(separator: " && ") + " && exec \"$0\" \"$@\"", try SwitchyardBinary.require(), "run", "--config", path,
            ]))
        } else {
            p = adopt(try ChildProcess(switchyard: ["run", "--config", path], environment: environment))
        }
        guard let text = p.waitForStderrLine(containing: "switchyard: listening on "),
              let port = Self.port(after: "listening on ", in: text) else {
            p.kill()
            XCTFail("proxy did not start (\(p.poll()?.description ?? "still running")): \(p.stderr)\nconfig:\n\(json)",
                    file: file, line: line)
            throw TestError("proxy did not start")
        }
        return RunningProxy(process: p, port: port, configPath: path)
    }

    /// The port of the proxy's admin listener, from its "admin (...) on ADDRESS" line.
    func adminPort(_ proxy: RunningProxy, file: StaticString = #filePath, line: UInt = #line) throws -> UInt16 {
        guard let text = proxy.process.waitForStderrLine(containing: "admin (/metrics"),
              let port = Self.port(after: "on ", in: text) else {
            XCTFail("no admin line: \(proxy.process.stderr)", file: file, line: line)
            throw TestError("no admin listener")
        }
        return port
    }

    /// One echo upstream and a proxy in front of it.
    func startProxyWithEcho(_ configure: (inout ProxyConfig) -> Void = { _ in },
                            file: StaticString = #filePath, line: UInt = #line) throws -> (RunningProxy, EchoUpstream) {
        let echo = try startEcho(name: "a", file: file, line: line)
        var config = ProxyConfig(endpoints: [echo.endpoint])
        configure(&config)
        return (try startProxy(config, file: file, line: line), echo)
    }

    /// Parses the port in "... listening on 127.0.0.1:PORT[ ...]".
    static func port(after marker: String, in line: String) -> UInt16? {
        guard let r = line.range(of: marker) else { return nil }
        let address = line[r.upperBound...].prefix { $0 != " " }
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return UInt16(address[address.index(after: colon)...])
    }

    // MARK: sockets and servers

    /// An in-test upstream (stopped in tearDown).
    func startServer(port: UInt16 = 0, _ handler: @escaping @Sendable (RawConnection, RawServer) -> Void) throws -> RawServer {
        let s = try RawServer(port: port, handler)
        servers.append(s)
        return s
    }

    /// An endpoint that refuses connections: a bound socket that does not listen (kept open
    /// until tearDown so nothing else takes the port).
    func refusingEndpoint() throws -> String {
        let (fd, port) = try Sockets.bound(listen: false)
        sockets.append(fd)
        return "127.0.0.1:\(port)"
    }

    /// A listening socket nobody accepts on (kept until tearDown): its port is "in use".
    func occupiedPort() throws -> UInt16 {
        let (fd, port) = try Sockets.bound(listen: true)
        sockets.append(fd)
        return port
    }

    func connect(_ proxy: RunningProxy, timeout: Double = 5) throws -> RawClient {
        try RawClient(port: proxy.port, timeout: timeout)
    }
}

extension EndToEndTestCase {
    /// Route `shop` split stable 100 / canary 0 over two endpoints, with `rollout` (a JSON
    /// object) on it when given, two workers, the admin listener and a control socket with a
    /// state file: what the rollout tests start from.
    func rolloutConfig(stable: UInt16, canary: UInt16, rollout: String?) throws -> String {
        let dir = try temporaryDirectory()
        return """
        {
          "listeners": [ { "address": "127.0.0.1:0" } ],
          "workers": 2,
          "timeouts": { "connectMs": 1000, "headerMs": 2000, "responseMs": 3000, "idleMs": 5000, "drainMs": 2000 },
          "upstreams": { "stable": { "endpoints": ["127.0.0.1:\(stable)"] }, "canary": { "endpoints": ["127.0.0.1:\(canary)"] } },
          "routes": [
            { "name": "shop", "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 },
                                         { "variant": "canary", "upstream": "canary", "weight": 0 } ]\(rollout.map { ", \"rollout\": \($0)" } ?? "") }
          ],
          "admin": { "address": "127.0.0.1:0" },
          "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
        }
        """
    }
}
