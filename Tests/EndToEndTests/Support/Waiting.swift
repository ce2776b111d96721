// Waiting on conditions instead of sleeping for fixed windows (the poll itself, `waitUntil`, is
// in TestSupport): the proxy's
// counters from /metrics, and loopback socket state from /proc/net/tcp (bytes a process has not
// read yet, connections not yet accepted). A loaded machine only makes these waits longer, never
// wrong.
import Foundation
import Glibc
import TestSupport

/// One /metrics answer: each sample line's name (with its labels, as written) to its value.
struct Metrics {
    let text: String
    private let values: [String: Double]

    init(text: String) {
        self.text = text
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = v
        }
        self.values = values
    }

    /// The sample called `name` (labels included, e.g. `switchyard_responses_total{class="2xx"}`);
    /// 0 when absent.
    subscript(_ name: String) -> Int { Int(values[name] ?? 0) }

    /// Shadow copies: sent, and every outcome a copy ends with. Each copy the proxy decides to
    /// make ends with exactly one outcome (completed, failed, dropped or skipped), whether it
    /// started or not, so `mirrorOutcomes` reaching the number of mirrored requests means the
    /// proxy has finished with all of them.
    var mirrorSent: Int { self["switchyard_mirror_sent_total"] }
    var mirrorCompleted: Int { self["switchyard_mirror_completed_total"] }
    var mirrorOutcomes: Int {
        self["switchyard_mirror_completed_total"] + self["switchyard_mirror_failed_total"]
            + self["switchyard_mirror_dropped_total"] + self["switchyard_mirror_skipped_body_total"]
    }
}

extension EndToEndTestCase {
    /// The admin listener's /metrics, on a fresh connection.
    func metrics(adminPort: UInt16) throws -> Metrics {
        let r = try RawClient(port: adminPort, timeout: 5).exchange("GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
        guard r.status == 200 else { throw TestError("/metrics answered \(r.status)") }
        return Metrics(text: r.bodyText)
    }

    /// Polls /metrics until `condition` holds (or `timeout` seconds pass); the last answer read.
    @discardableResult
    func waitForMetrics(adminPort: UInt16, timeout: Double = 5, _ condition: (Metrics) -> Bool) throws -> Metrics {
        var last = try metrics(adminPort: adminPort)
        try waitUntil(timeout: timeout, interval: 0.01) {
            last = try metrics(adminPort: adminPort)
            return condition(last)
        }
        return last
    }
}

/// IPv4 TCP sockets of this network namespace, from /proc/net/tcp.
enum LoopbackTCP {
    struct Entry {
        var localPort: UInt16
        var remotePort: UInt16
        /// The kernel's TCP state (0x0A: listening).
        var state: Int
        /// Bytes written and not yet acknowledged by the peer.
        var txQueue: Int
        /// Established: bytes received and not yet read by the owning process. Listening:
        /// connections waiting in the accept queue.
        var rxQueue: Int
    }

    /// Every entry whose local port is one of `ports`. The table holds every socket on the
    /// machine (megabytes on a busy one), so lines are matched on their bytes before any is
    /// parsed.
    static func entries(localPorts ports: Set<UInt16>) -> [Entry] {
        let data = readProcFile("/proc/net/tcp")
        // "  sl  local_address rem_address   st tx_queue rx_queue ..."; addresses are
        // HEX_IP:HEX_PORT, queues HEX_TX:HEX_RX.
        let wanted = Set(ports.map { port -> [UInt8] in
            let hex = String(port, radix: 16, uppercase: true)
            return Array((":" + String(repeating: "0", count: 4 - hex.count) + hex + " ").utf8)
        })
        var out: [Entry] = []
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            let stop = base + raw.count
            var line = base
            while line < stop {
                let lineEnd = memchr(line, 10, stop - line).map { UnsafeRawPointer($0) } ?? stop
                defer { line = lineEnd + 1 }
                // The first colon ends "sl"; the second is the local address's, before its port.
                guard let sl = memchr(line, 58, lineEnd - line),
                      let colon = memchr(UnsafeRawPointer(sl) + 1, 58, lineEnd - UnsafeRawPointer(sl) - 1).map({ UnsafeRawPointer($0) }),
                      colon + 6 <= lineEnd,
                      wanted.contains(Array(UnsafeRawBufferPointer(start: colon, count: 6))) else { continue }
                let fields = String(decoding: UnsafeRawBufferPointer(start: line, count: lineEnd - line), as: UTF8.self)
                    .split(separator: " ")
                guard fields.count > 4 else { continue }
                func port(_ address: Substring) -> UInt16? { address.split(separator: ":").last.flatMap { UInt16($0, radix: 16) } }
                let queues = fields[4].split(separator: ":")
                guard let local = port(fields[1]), let remote = port(fields[2]), let state = Int(fields[3], radix: 16),
                      queues.count == 2, let tx = Int(queues[0], radix: 16), let rx = Int(queues[1], radix: 16) else { continue }
                out.append(Entry(localPort: local, remotePort: remote, state: state, txQueue: tx, rxQueue: rx))
            }
        }
        return out
    }

    /// A /proc file's bytes (its reported size is 0, so read until the end).
    private static func readProcFile(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// Whether every byte written on the connected loopback socket `fd` has been read by the
    /// process at the other end (the proxy, say): nothing unacknowledged on this side, nothing
    /// unread on the peer's.
    static func peerHasReadEverything(_ fd: Int32) -> Bool {
        let local = Sockets.localPort(fd)
        let remote = Sockets.remotePort(fd)
        let table = entries(localPorts: [local, remote])
        guard let mine = table.first(where: { $0.localPort == local && $0.remotePort == remote }),
              let theirs = table.first(where: { $0.localPort == remote && $0.remotePort == local }) else { return false }
        return mine.txQueue == 0 && theirs.rxQueue == 0
    }

    /// Connections waiting to be accepted on the loopback listener at `port`; nil if none listens.
    static func acceptBacklog(port: UInt16) -> Int? {
        entries(localPorts: [port]).first { $0.state == 0x0A }?.rxQueue
    }
}

extension RawClient {
    /// Waits until the proxy has read every byte this client has sent (up to `timeout`
    /// seconds); whether it has.
    @discardableResult
    func waitUntilPeerHasRead(timeout: Double = 5) -> Bool {
        waitUntil(timeout: timeout, interval: 0.01) { LoopbackTCP.peerHasReadEverything(fd) }
    }
}
