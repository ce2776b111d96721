// Who may write where Switchyard keeps its control socket, state file and secrets: a directory
// or file that another local user can write is a way to reconfigure (or impersonate) the proxy.
import Glibc

public enum FileTrust {
    /// Why `directory` must not hold the control socket or the state file, or nil when it may.
    /// Refused: a directory owned by a user other than ours or root, or one every user can
    /// write. The sticky bit is enough for the socket (nobody else can replace or rename over
    /// a file we created there) but not for the state file: another user could create it
    /// before our first save, and it would be applied at the next start.
    /// `serviceUID`: the user the proxy becomes after start ("user"), trusted like this one.
    package static func directoryProblem(_ directory: String, holding what: String, stickyIsEnough: Bool,
                                 serviceUID: uid_t? = nil) -> String? {
        var st = stat()
        guard stat(directory, &st) == 0 else { return nil }  // a missing directory fails later, with its own reason
        let owner = st.st_uid
        if owner != geteuid() && owner != 0 && owner != serviceUID {
            return "the directory \(directory) of the \(what) belongs to uid \(owner), not to this process (uid \(geteuid())) or root"
        }
        let mode = Int(st.st_mode) & 0o7777
        if mode & 0o002 != 0 && !(stickyIsEnough && mode & 0o1000 != 0) {
            return "the directory \(directory) of the \(what) is writable by every user (mode \(octal(mode)))"
                + (stickyIsEnough ? " without the sticky bit" : "")
        }
        return nil
    }

    /// Why a file whose bytes decide what the proxy does (the config, a credential it sends)
    /// must not be used, or nil: owned by a user other than ours, root or the service user, or
    /// writable by its group or every user. `what` names it, e.g. "the config file".
    package static func writerProblem(_ what: String, owner: uid_t, mode: Int, serviceUID: uid_t?) -> String? {
        if owner != geteuid() && owner != 0 && owner != serviceUID {
            return "\(what) belongs to uid \(owner), not to this process (uid \(geteuid())), root or the service user"
        }
        if mode & 0o022 != 0 {
            return "\(what) is writable by \(mode & 0o002 != 0 ? "every user" : "its group") (mode \(octal(mode)))"
        }
        return nil
    }

    /// A warning when the group may write `directory`, or nil.
    package static func groupWritable(_ directory: String, holding what: String) -> String? {
        var st = stat()
        guard stat(directory, &st) == 0 else { return nil }
        let mode = Int(st.st_mode) & 0o7777
        guard mode & 0o020 != 0 else { return nil }
        return "the directory \(directory) of the \(what) is writable by its group (mode \(octal(mode))): "
            + "group members can replace the \(what)"
    }

    /// Why the secret file (cookie key, TLS private key) with permission bits `mode` is
    /// exposed, or nil when only its owner can read it. `use` says what a reader could do
    /// ("sign cookies", "impersonate the listener"). A warning, not an error: a permission slip
    /// must not stop a running fleet.
    /// `group`/`serviceGroup`: the file's group and that of "user"; a file only that group may
    /// read (0640 root:GROUP) is how a root-owned secret stays readable after the drop.
    public static func secretFileProblem(_ path: String, mode: Int, group: gid_t? = nil, serviceGroup: gid_t? = nil,
                                         use: String) -> String? {
        guard mode & 0o077 != 0, !readableByServiceGroupOnly(mode: mode, group: group, serviceGroup: serviceGroup) else { return nil }
        return "secret file \"\(path)\" has mode \(octal(mode)): "
            + (mode & 0o007 != 0 ? "every local user" : "its group") + " can read it and \(use); chmod 600 it"
    }

    /// Whether the group beyond the owner that may read the file is the service's own, and it
    /// may only read: readable by the proxy after the drop, by no other user.
    package static func readableByServiceGroupOnly(mode: Int, group: gid_t?, serviceGroup: gid_t?) -> Bool {
        guard let group, let serviceGroup, group == serviceGroup else { return false }
        return mode & 0o037 == 0
    }

    /// The same for a file on disk (nil also when it cannot be examined: reading it reports that).
    public static func secretFileProblem(_ path: String, use: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return secretFileProblem(path, mode: Int(st.st_mode) & 0o7777, use: use)
    }

    /// The directory part of `path` ("." for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    /// `0644`-style text of permission bits.
    package static func octal(_ mode: Int) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
