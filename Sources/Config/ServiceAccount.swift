// The user and group the proxy serves as ("user", "group"), resolved when the config loads;
// taking them on is the executable's (switchyard/PrivilegeDrop.swift).
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
}

public struct ServiceAccountError: Error, Sendable, CustomStringConvertible {
    public var description: String
    package init(_ description: String) { self.description = description }
}

extension Config {
    /// The account named by "user"/"group", or nil when none is configured (or it is unknown:
    /// the config did not load then).
    public var serviceAccount: ServiceAccount? {
        guard let user else { return nil }
        return try? ServiceAccount.resolve(user: user, group: group).get()
    }
}
