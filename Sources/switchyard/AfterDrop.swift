// What the service account cannot do that the proxy will ask of it later, said once at start,
// right after the drop (so each answer is the kernel's own, ACLs and all): save the state
// file, read again the files a reload reads (certificates, keys, CA files, secrets), and create
// a new access log after logrotate moved the old one.
import Config
import Glibc

extension ServiceAccount {
    /// One warning line per problem; `file` is the config file's path. Call as this account.
    func warningsAfterDrop(_ loaded: ConfigLoadResult, file: String) -> [String] {
        var lines: [String] = []
        if let stateFile = loaded.config.control?.stateFile, !canCreate(in: FileTrust.directory(of: stateFile)) {
            lines.append("\(file): control.stateFile: \(user) cannot write \(FileTrust.directory(of: stateFile)): "
                + "runtime changes will not be saved; chown it to \(user)")
        }
        for named in loaded.files {
            let fd = open(named.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)   // a FIFO must not hold the start
            if fd >= 0 {
                close(fd)
                continue
            }
            lines.append("\(named.location): reload will not be able to read \(named.path) as user \(user): "
                + "\(String(cString: strerror(errno))); make it readable by group \(group) "
                + "(chgrp \(group), chmod 640, and its directories searchable)")
        }
        if let log = loaded.config.accessLog?.path, log != "stdout", !canCreate(in: FileTrust.directory(of: log)) {
            lines.append("\(file): accessLog.path: \(user) cannot create files in \(FileTrust.directory(of: log)): after "
                + "logrotate moves \(log), SIGUSR1 cannot open a new one and lines keep going to the moved file; "
                + "chown the directory to \(user), or let logrotate create the file (create 0640 \(user) \(group))")
        }
        return lines
    }

    private func canCreate(in directory: String) -> Bool { access(directory, W_OK | X_OK) == 0 }
}
