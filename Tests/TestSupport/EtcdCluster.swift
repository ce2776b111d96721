// A real etcd cluster (Debian's etcd-server) on loopback for the tests that need one: members
// on ports the kernel chose a moment before, data in a temporary directory, fast elections and
// progress notifications every second, so a test waits for conditions rather than for time.
// Everything it started is killed and removed by `stop`.
import Foundation
import Glibc

public final class EtcdCluster: @unchecked Sendable {
    public struct Member {
        public let name: String
        public let clientPort: UInt16
        public let peerPort: UInt16
        /// Plain HTTP /health and /metrics, also when clients must speak TLS.
        public let metricsPort: UInt16
        public let secure: Bool
        public var clientURL: String { "\(secure ? "https" : "http")://127.0.0.1:\(clientPort)" }
        var peerURL: String { "http://127.0.0.1:\(peerPort)" }
    }

    /// Client TLS: etcd's certificate and key, and the CA whose client certificates it accepts
    /// (every client must present one).
    public struct ClientTLS {
        public var cert: String
        public var key: String
        public var clientCA: String
        public init(cert: String, key: String, clientCA: String) {
            self.cert = cert
            self.key = key
            self.clientCA = clientCA
        }
    }

    public let members: [Member]
    public let directory: String
    private var processes: [String: Process] = [:]
    private let extraArguments: [String]
    private let tls: ClientTLS?

    /// Whether etcd is installed here (`.ci/run` installs etcd-server).
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }
    static let binary = "/usr/bin/etcd"

    /// Starts `size` members and waits until every one answers /health.
    public init(size: Int = 1, extraArguments: [String] = [], tls: ClientTLS? = nil) throws {
        directory = try TemporaryDirectory.make(prefix: "etcd")
        self.extraArguments = extraArguments
        self.tls = tls
        var made: [Member] = []
        // Hold every port bound until all are chosen, so two members never draw the same one.
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for i in 0..<size {
            let client = try Sockets.bound(listen: false)
            let peer = try Sockets.bound(listen: false)
            let metrics = try Sockets.bound(listen: false)
            held += [client.fd, peer.fd, metrics.fd]
            made.append(Member(name: "m\(i)", clientPort: client.port, peerPort: peer.port, metricsPort: metrics.port, secure: tls != nil))
        }
        members = made
        for fd in held { close(fd) }
        held = []
        do {
            for m in members { try start(m) }
            try waitHealthy(members)
        } catch {
            stop()
            throw error
        }
    }

    public var clientURLs: [String] { members.map(\.clientURL) }

    /// Starts `member` again (after `kill`), with its data.
    public func start(_ member: Member) throws {
        let cluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--name", member.name, "--data-dir", "\(directory)/\(member.name)",
                       "--listen-client-urls", member.clientURL, "--advertise-client-urls", member.clientURL,
                       "--listen-peer-urls", member.peerURL, "--initial-advertise-peer-urls", member.peerURL,
                       "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "t-\(directory.hashValue)",
                       "--heartbeat-interval", "50", "--election-timeout", "500",
                       "--listen-metrics-urls", "http://127.0.0.1:\(member.metricsPort)",
                       "--experimental-watch-progress-notify-interval", "1s", "--log-level", "warn"] + extraArguments
            + (tls.map { ["--cert-file", $0.cert, "--key-file", $0.key, "--client-cert-auth", "--trusted-ca-file", $0.clientCA] } ?? [])
        let log = FileHandle(forWritingAtPath: "\(directory)/\(member.name).log") ?? {
            FileManager.default.createFile(atPath: "\(directory)/\(member.name).log", contents: nil)
            return FileHandle(forWritingAtPath: "\(directory)/\(member.name).log")!
        }()
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        processes[member.name] = p
    }

    /// SIGKILLs `member` and waits for it to be gone.
    public func kill(_ member: Member) {
        guard let p = processes.removeValue(forKey: member.name) else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    public func stop() {
        for m in members { kill(m) }
        TemporaryDirectory.remove(directory)
    }

    deinit { stop() }

    /// Waits until each of `members` answers `/health` with `"health":"true"`.
    public func waitHealthy(_ which: [Member], timeout: Double = 30) throws {
        for m in which {
            let ok = waitUntil(timeout: timeout, interval: 0.05) { Self.get(port: m.metricsPort, path: "/health")?.contains("\"health\":\"true\"") == true }
            if !ok { throw TestError("etcd member \(m.name) not healthy within \(timeout)s: \(log(m).suffix(2000))") }
        }
    }

    public func log(_ member: Member) -> String {
        (try? String(contentsOfFile: "\(directory)/\(member.name).log", encoding: .utf8)) ?? ""
    }

    /// The member that is leader now, by asking each its status.
    public func leader() -> Member? {
        for m in members {
            guard let answer = Self.post(port: m.clientPort, path: "/v3/maintenance/status", body: "{}"),
                  let leader = Self.field(answer, "leader"), let me = Self.field(answer, "member_id") else { continue }
            if leader == me { return m }
        }
        return nil
    }

    /// A JSON string field's value, found by name (good enough for etcd's flat answers).
    static func field(_ json: String, _ name: String) -> String? {
        guard let r = json.range(of: "\"\(name)\":\"") else { return nil }
        let rest = json[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    static func get(port: UInt16, path: String) -> String? { exchange(port: port, "GET \(path) HTTP/1.0\r\n\r\n") }

    public static func post(port: UInt16, path: String, body: String) -> String? {
        exchange(port: port, "POST \(path) HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    private static func exchange(port: UInt16, _ request: String) -> String? {
        guard let fd = try? Sockets.connect(port: port) else { return nil }
        defer { close(fd) }
        Sockets.setTimeouts(fd, seconds: 2)
        guard Sockets.send(fd, Array(request.utf8)) else { return nil }
        var bytes: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
        defer { chunk.deallocate() }
        while let n = try? Sockets.receive(fd, into: chunk) { bytes += chunk[0..<n] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
