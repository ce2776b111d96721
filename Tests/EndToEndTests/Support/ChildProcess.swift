// Child processes for end-to-end tests: the switchyard binary started with posix_spawn, its
// stdout and stderr collected by reader threads, waited for and killed without leaking.
import Foundation
import Glibc
import TestSupport
import XCTest

/// Where the `switchyard` executable is: next to the test bundle in `.build/<config>/`.
enum SwitchyardBinary {
    static let path: String? = locate()

    /// Fails the calling test with a clear message when the binary is missing.
    static func require(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard let path else {
            XCTFail("""
                switchyard executable not found (looked next to the test bundle, in .build/debug and \
                $SWITCHYARD_BINARY): run `swift build` before `swift test`
                """, file: file, line: line)
            throw TestError("switchyard executable not found")
        }
        return path
    }

    private static func locate() -> String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_BINARY"], !env.isEmpty { candidates.append(env) }
        // The xctest runner (or bundle) sits in .build/<triple>/<config>/ beside the executable.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("switchyard").path)
        let bundle = Bundle.main.bundleURL.resolvingSymlinksInPath()
        candidates.append(bundle.appendingPathComponent("switchyard").path)
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("switchyard").path)
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(b.bundleURL.deletingLastPathComponent().appendingPathComponent("switchyard").path)
        }
        candidates.append(RepoPaths.root.appendingPathComponent(".build/debug/switchyard").path)
        for c in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDirectory), !isDirectory.boolValue,
               access(c, X_OK) == 0 {
                return c
            }
        }
        return nil
    }
}

enum RepoPaths {
    /// The package root, from this file's location (Tests/EndToEndTests/Support/).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }
}

/// How a child ended.
enum Termination: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }
}

final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let arguments: [String]
    private let condition = NSCondition()
    private var stdoutBytes: [UInt8] = []
    private var stderrBytes: [UInt8] = []
    private var openStreams = 2
    private var termination: Termination?

    /// Starts `switchyard ARGUMENTS...` with stdin from /dev/null.
    convenience init(switchyard arguments: [String], environment: [String: String?] = [:]) throws {
        try self.init(executable: try SwitchyardBinary.require(), arguments: arguments, environment: environment)
    }

    /// `environment`: variables set (a value) or removed (nil) for the child; the rest is
    /// this process's environment.
    init(executable: String, arguments: [String], environment: [String: String?] = [:]) throws {
        self.arguments = arguments
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { throw TestError("pipe: errno \(errno)") }
        guard pipe(&errPipe) == 0 else {
            Glibc.close(outPipe[0]); Glibc.close(outPipe[1])
            throw TestError("pipe: errno \(errno)")
        }
        // Only the dup2'ed copies may reach this child (and none any other child).
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        // The child starts with default dispositions and nothing blocked, whatever the runner set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.isEmpty ? [] : variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var child: pid_t = 0
        let rc = envp.isEmpty ? posix_spawn(&child, executable, &actions, &attributes, argv, environ)
                              : envp.withUnsafeBufferPointer { posix_spawn(&child, executable, &actions, &attributes, argv, $0.baseAddress) }
        Glibc.close(outPipe[1])
        Glibc.close(errPipe[1])
        guard rc == 0 else {
            Glibc.close(outPipe[0]); Glibc.close(errPipe[0])
            throw TestError("posix_spawn \(executable): error \(rc)")
        }
        pid = child
        startReader(outPipe[0], stderr: false)
        startReader(errPipe[0], stderr: true)
    }

    private func startReader(_ fd: Int32, stderr: Bool) {
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                condition.lock()
                if n > 0 {
                    if stderr { stderrBytes += chunk[0..<n] } else { stdoutBytes += chunk[0..<n] }
                } else {
                    openStreams -= 1
                }
                condition.broadcast()
                condition.unlock()
                if n <= 0 { break }
            }
            Glibc.close(fd)
        }
        thread.start()
    }

    var stdout: String {
        condition.lock(); defer { condition.unlock() }
        return String(decoding: stdoutBytes, as: UTF8.self)
    }

    var stderr: String {
        condition.lock(); defer { condition.unlock() }
        return String(decoding: stderrBytes, as: UTF8.self)
    }

    /// The first stderr line containing `text`, waiting for it up to `timeout` seconds; nil when
    /// it did not come (the child exited or the time passed).
    func waitForStderrLine(containing text: String, timeout: Double = 10) -> String? {
        waitForLine(where: { $0.contains(text) }, stderr: true, timeout: timeout)
    }

    /// The first stdout line for which `matches` holds, waiting for it up to `timeout` seconds;
    /// nil when it did not come.
    func waitForStdoutLine(timeout: Double = 10, where matches: (Substring) -> Bool) -> String? {
        waitForLine(where: matches, stderr: false, timeout: timeout)
    }

    /// Woken by the reader threads as bytes arrive, so a line is seen as soon as it is complete.
    private func waitForLine(where matches: (Substring) -> Bool, stderr: Bool, timeout: Double) -> String? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            let lines = String(decoding: stderr ? stderrBytes : stdoutBytes, as: UTF8.self)
                .split(separator: "\n", omittingEmptySubsequences: false)
            // Only complete lines count.
            for line in lines.dropLast() where matches(line) { return String(line) }
            if openStreams == 0 { return nil }
            if !condition.wait(until: min(deadline, Date(timeIntervalSinceNow: 0.05))) && Date() >= deadline { return nil }
        }
    }

    /// Reaps the child if it has ended.
    func poll() -> Termination? {
        condition.lock()
        defer { condition.unlock() }
        if let termination { return termination }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        let result: Termination = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        termination = result
        return result
    }

    /// Waits up to `timeout` seconds for the child to end; nil if it is still running. Its output
    /// streams are drained (briefly) so `stdout` / `stderr` are complete afterwards.
    @discardableResult
    func waitForExit(timeout: Double = 10) -> Termination? {
        // waitpid cannot wait with a deadline: poll it.
        var result: Termination?
        waitUntil(timeout: timeout, interval: 0.002) {
            result = poll()
            return result != nil
        }
        if result != nil {
            condition.lock()
            let streamsDeadline = Date(timeIntervalSinceNow: 2)
            while openStreams > 0 && condition.wait(until: streamsDeadline) {}
            condition.unlock()
        }
        return result
    }

    func send(signal: Int32) {
        if poll() == nil { _ = Glibc.kill(pid, signal) }
    }

    /// Kills the child (if still running) and reaps it.
    func kill() {
        guard poll() == nil else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = waitForExit(timeout: 10)
    }

    /// Runs `switchyard ARGUMENTS...` to completion.
    static func run(switchyard arguments: [String], timeout: Double = 20) throws -> (termination: Termination, stdout: String, stderr: String) {
        try finish(try ChildProcess(switchyard: arguments), timeout: timeout)
    }

    /// Runs another program (etcdctl, openssl) to completion.
    static func run(executable: String, arguments: [String], timeout: Double = 20) throws -> (termination: Termination, stdout: String, stderr: String) {
        try finish(try ChildProcess(executable: executable, arguments: arguments), timeout: timeout)
    }

    private static func finish(_ child: ChildProcess, timeout: Double) throws -> (termination: Termination, stdout: String, stderr: String) {
        guard let t = child.waitForExit(timeout: timeout) else {
            child.kill()
            throw TestError("\(child.arguments.joined(separator: " ")) did not exit within \(timeout) s")
        }
        return (t, child.stdout, child.stderr)
    }

    /// Signal masks and what each thread waits in, from /proc (for failure messages).
    func diagnostics() -> String {
        var out = "pid \(pid) \(arguments.joined(separator: " "))\n"
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            out += status.split(separator: "\n").filter { $0.hasPrefix("Sig") || $0.hasPrefix("ShdPnd") || $0.hasPrefix("State") }
                .joined(separator: "\n") + "\n"
        }
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            let base = "/proc/\(pid)/task/\(task)"
            let comm = (try? String(contentsOfFile: base + "/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            let wchan = (try? String(contentsOfFile: base + "/wchan", encoding: .utf8)) ?? "?"
            let masks = ((try? String(contentsOfFile: base + "/status", encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.hasPrefix("SigPnd") || $0.hasPrefix("SigBlk") }.joined(separator: " ")
            out += "  thread \(task) \(comm) wchan=\(wchan) \(masks)\n"
        }
        return out + "stderr:\n" + stderr
    }

    /// VmRSS in bytes from /proc/PID/status.
    func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst(6).filter { $0.isNumber }
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }
}
