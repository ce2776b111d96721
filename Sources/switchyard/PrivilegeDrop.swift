// Taking on the service account for good: when started as root, once every listener, socket and
// file is open (setgroups, setgid, setuid), then verified on every thread before a request is
// served.
import Config
import Foundation
import Glibc

extension ServiceAccount {
    /// Whether the process already runs as this account (started by systemd as that user, say).
    var isCurrent: Bool { geteuid() == uid && getuid() == uid && getegid() == gid && getgid() == gid }

    /// Becomes this account for good: supplementary groups replaced by the one group, then the
    /// group, then the user (glibc applies each to every thread), then checks each thread's
    /// real, effective, saved and filesystem ids, its groups and capabilities, and that root
    /// cannot be taken back. Nothing may be served when this throws.
    func become() throws(ServiceAccountError) {
        if isCurrent { return }
        guard geteuid() == 0 else {
            throw ServiceAccountError("cannot run as \(self): only root can change user, and this process is uid \(geteuid())")
        }
        var groups = [gid]
        if setgroups(1, &groups) != 0 { throw ServiceAccountError("setgroups(\(gid)): \(String(cString: strerror(errno)))") }
        if setgid(gid) != 0 { throw ServiceAccountError("setgid(\(gid)): \(String(cString: strerror(errno)))") }
        if setuid(uid) != 0 { throw ServiceAccountError("setuid(\(uid)): \(String(cString: strerror(errno)))") }
        try verify()
    }

    /// Every thread runs as this account only, with no capability left (unless the account is
    /// root), and root cannot be regained.
    func verify() throws(ServiceAccountError) {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        guard !tasks.isEmpty else { throw ServiceAccountError("cannot read /proc/self/task to verify the change of user") }
        for task in tasks {
            guard let status = try? String(contentsOfFile: "/proc/self/task/\(task)/status", encoding: .utf8) else { continue }
            let fields = Self.fields(status)
            let uids = fields["Uid"] ?? [], gids = fields["Gid"] ?? []
            guard uids.count == 4, uids.allSatisfy({ $0 == String(uid) }) else {
                throw ServiceAccountError("thread \(task) still has uids \(uids.joined(separator: " ")), not \(uid)")
            }
            guard gids.count == 4, gids.allSatisfy({ $0 == String(gid) }) else {
                throw ServiceAccountError("thread \(task) still has gids \(gids.joined(separator: " ")), not \(gid)")
            }
            let supplementary = fields["Groups"] ?? []
            guard supplementary.allSatisfy({ $0 == String(gid) }) else {
                throw ServiceAccountError("thread \(task) keeps supplementary groups \(supplementary.joined(separator: " "))")
            }
            if uid != 0 {
                for key in ["CapPrm", "CapEff", "CapAmb"] {
                    if let bits = fields[key]?.first, UInt64(bits, radix: 16) != 0 {
                        throw ServiceAccountError("thread \(task) keeps capabilities (\(key) \(bits))")
                    }
                }
            }
        }
        if uid != 0 && (setuid(0) == 0 || seteuid(0) == 0) {
            throw ServiceAccountError("root could be taken back after switching to \(self)")
        }
    }

    /// "Key:\tv1\tv2" lines of a /proc status file.
    static func fields(_ status: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for line in status.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
        }
        return out
    }
}
