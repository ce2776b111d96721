// The user and group the proxy serves as ("user", "group"): resolved when the config loads, and,
// when started as root, taken on for good once every listener, socket and file is open
// (setgroups, setgid, setuid), then verified on every thread before a request is served.
import Foundation
import Glibc

public struct ServiceAccount: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var uid: uid_t
    public var group: String
    public var gid: gid_t

    public var description: String { "\(user) (uid \(uid), gid \(gid) \(group))" }

    /// `user` (a name or a number) and `group` (default: the user's primary group); the reason
    /// when either is unknown on this system.
    public static func resolve(user: String, group: String?) -> Result<ServiceAccount, ServiceAccountError> {
        guard let passwd = lookupUser(user) else {
            return .failure(ServiceAccountError("no user \"\(user)\" on this system"))
        }
        var account = ServiceAccount(user: passwd.name, uid: passwd.uid, group: "", gid: passwd.gid)
        if let group {
            guard let g = lookupGroup(group) else { return .failure(ServiceAccountError("no group \"\(group)\" on this system")) }
            account.group = g.name
            account.gid = g.gid
        } else {
            account.group = lookupGroup(String(passwd.gid))?.name ?? String(passwd.gid)
        }
        return .success(account)
    }

    private static func lookupUser(_ name: String) -> (name: String, uid: uid_t, gid: gid_t)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        if let number = UInt32(name) {
            guard getpwuid_r(number, &entry, &buffer, buffer.count, &result) == 0, result != nil else {
                // A bare number names a uid even without a passwd entry (a container's user).
                return (name, number, number)
            }
        } else {
            guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        }
        return (String(cString: entry.pw_name), entry.pw_uid, entry.pw_gid)
    }

    private static func lookupGroup(_ name: String) -> (name: String, gid: gid_t)? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 65_536)
        if let number = UInt32(name) {
            guard getgrgid_r(number, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return (name, number) }
        } else {
            guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        }
        return (String(cString: entry.gr_name), entry.gr_gid)
    }

    /// Whether the process already runs as this account (started by systemd as that user, say).
    public var isCurrent: Bool { geteuid() == uid && getuid() == uid && getegid() == gid && getgid() == gid }

    /// Becomes this account for good: supplementary groups replaced by the one group, then the
    /// group, then the user (glibc applies each to every thread), then checks each thread's
    /// real, effective, saved and filesystem ids, its groups and capabilities, and that root
    /// cannot be taken back. Nothing may be served when this throws.
    public func become() throws(ServiceAccountError) {
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
    public func verify() throws(ServiceAccountError) {
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

public struct ServiceAccountError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Config {
    /// The account named by "user"/"group", or nil when none is configured (or it is unknown:
    /// the config did not load then).
    public var serviceAccount: ServiceAccount? {
        guard let user else { return nil }
        return try? ServiceAccount.resolve(user: user, group: group).get()
    }
}
