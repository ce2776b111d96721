// Opening a log file by its path, at start and again on SIGUSR1. Started as root with "user",
// the file (and its directory, when Switchyard makes it) is handed to the service user before
// the drop: a reopen after logrotate moved the file runs as that user and must create the new
// one, which a root-owned 0644 file in a root-owned directory never allows.
import Glibc
import Reactor

/// Who a log file is handed to when it is opened as root (the account the proxy becomes).
public typealias LogOwner = (uid: uid_t, gid: gid_t)

enum LogFile {
    /// A log file's descriptor, opened for appending (created 0644 when missing). With `owner`:
    /// a missing directory is made (0750) and both are given to the owner; the file must not
    /// be a symbolic link, and one with other hard links is not given away, so a link planted
    /// by whoever could write the directory never hands another file to the service user.
    /// `report` hears what could not be handed over.
    static func open(_ path: String, owner: LogOwner?, report: (String) -> Void) throws(SystemError) -> Int32 {
        if let owner { try makeDirectory(of: path, for: owner) }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (owner == nil ? 0 : O_NOFOLLOW), 0o644)
        if fd < 0 { throw SystemError("open", errno) }
        guard let owner else { return fd }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return fd }  // a FIFO or a device stays as it is
        if st.st_uid == owner.uid && st.st_gid == owner.gid { return fd }
        guard st.st_nlink == 1 else {
            report("warning: the access log \(path) has \(st.st_nlink) hard links: not giving it to uid \(owner.uid); "
                + "SIGUSR1 will not be able to reopen it")
            return fd
        }
        if fchown(fd, owner.uid, owner.gid) != 0 {
            let e = errno
            Glibc.close(fd)
            throw SystemError("fchown", e)
        }
        return fd
    }

    /// Makes the file's directory when it is missing (its parent must exist), owned by `owner`.
    private static func makeDirectory(of path: String, for owner: LogOwner) throws(SystemError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var st = stat()
        if stat(directory, &st) == 0 { return }
        guard errno == ENOENT else { return }   // open() reports the problem with the file's own path
        if mkdir(directory, 0o750) != 0 {
            if errno == EEXIST { return }
            throw SystemError("mkdir", errno)
        }
        // lchown: had the new directory been swapped for a symlink, only the link changes owner.
        if lchown(directory, owner.uid, owner.gid) != 0 { throw SystemError("chown", errno) }
    }
}
