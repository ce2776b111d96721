// Helpers for the operations tests: a proxy started with extra environment, steady background
// traffic that counts every failed request, and a directory laid out the way the kubelet
// mounts a ConfigMap (files behind a `..data` symlink swapped on each update).
import Foundation
import Glibc
import TestSupport
import XCTest

/// Requests sent back to back on keep-alive connections until `stop()`; every answer that is
/// not 200 or every broken exchange counts as a failure.
final class BackgroundLoad: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var okCount = 0
    private var failures: [String] = []
    private let group = DispatchGroup()

    init(ports: [UInt16], connectionsPerPort: Int = 2) {
        for port in ports {
            for _ in 0..<connectionsPerPort {
                group.enter()
                Thread { [self] in
                    defer { group.leave() }
                    var client: RawClient?
                    while lock.withLock({ running }) {
                        do {
                            if client == nil { client = try RawClient(port: port, timeout: 10) }
                            let r = try client!.exchange(get("/"))
                            lock.withLock {
                                if r.status == 200 { okCount += 1 } else { failures.append("port \(port): status \(r.status)") }
                            }
                        } catch {
                            lock.withLock { failures.append("port \(port): \(error)") }
                            client = nil
                        }
                    }
                }.start()
            }
        }
    }

    /// Waits until at least `count` more requests have succeeded (the load is really running).
    func waitForProgress(_ count: Int = 20, timeout: Double = 10) -> Bool {
        let start = lock.withLock { okCount }
        return waitUntil(timeout: timeout, interval: 0.01) { lock.withLock { okCount } >= start + count }
    }

    /// Stops and returns (succeeded, failures).
    func stop() -> (ok: Int, failures: [String]) {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { (okCount, failures) }
    }
}

/// A ConfigMap volume as the kubelet writes it: `DIR/..TIMESTAMP/NAME` holds the data,
/// `DIR/..data` links to the current timestamp directory, `DIR/NAME` links to `..data/NAME`.
/// An update writes a new timestamp directory, points `..data_tmp` at it, renames that over
/// `..data` (one atomic step) and removes the old directory.
struct KubeletVolume {
    let dir: String
    let name: String
    private(set) var generation = 0

    var path: String { dir + "/" + name }

    init(dir: String, name: String, text: String) throws {
        self.dir = dir
        self.name = name
        guard mkdir(dir, 0o755) == 0 || errno == EEXIST else { throw TestError("mkdir \(dir): errno \(errno)") }
        try writeGeneration(text)
        guard symlink("..g0", dir + "/..data") == 0, symlink("..data/\(name)", path) == 0 else {
            throw TestError("symlink: errno \(errno)")
        }
    }

    private func writeGeneration(_ text: String) throws {
        let sub = "\(dir)/..g\(generation)"
        guard mkdir(sub, 0o755) == 0 else { throw TestError("mkdir \(sub): errno \(errno)") }
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(sub)/\(name)"))
    }

    /// An update, as the kubelet makes it.
    mutating func update(_ text: String) throws {
        let old = "\(dir)/..g\(generation)"
        generation += 1
        try writeGeneration(text)
        unlink(dir + "/..data_tmp")
        guard symlink("..g\(generation)", dir + "/..data_tmp") == 0, rename(dir + "/..data_tmp", dir + "/..data") == 0 else {
            throw TestError("swap: errno \(errno)")
        }
        try FileManager.default.removeItem(atPath: old)
    }
}

extension EndToEndTestCase {
    /// Starts `switchyard run --config PATH` with `environment` added (NAME=VALUE), and waits for
    /// its listening line.
    func startProxy(configPath: String, environment: [String], file: StaticString = #filePath,
                    line: UInt = #line) throws -> RunningProxy {
        let p = adopt(try ChildProcess(executable: "/usr/bin/env",
                                       arguments: environment + [try SwitchyardBinary.require(), "run", "--config", configPath]))
        guard let text = p.waitForStderrLine(containing: "switchyard: listening on "),
              let port = Self.port(after: "listening on ", in: text) else {
            p.kill()
            XCTFail("proxy did not start (\(p.poll()?.description ?? "still running")): \(p.stderr)", file: file, line: line)
            throw TestError("proxy did not start")
        }
        return RunningProxy(process: p, port: port, configPath: configPath)
    }

    /// Starts the proxy from a config file already written (e.g. behind kubelet-style symlinks).
    func startProxy(configPath: String, file: StaticString = #filePath, line: UInt = #line) throws -> RunningProxy {
        try startProxy(configPath: configPath, environment: [], file: file, line: line)
    }

    /// How many stderr lines of `proxy` contain `text`.
    func stderrLines(_ proxy: RunningProxy, containing text: String) -> Int {
        proxy.process.stderr.split(separator: "\n").filter { $0.contains(text) }.count
    }
}

extension ChildProcess {
    /// Waits for `child` to end (20 s at most, then kills it); its ending and output.
    static func runToEnd(_ child: ChildProcess) -> (termination: Termination?, stdout: String, stderr: String) {
        let t = child.waitForExit(timeout: 20)
        if t == nil { child.kill() }
        return (t, child.stdout, child.stderr)
    }
}
