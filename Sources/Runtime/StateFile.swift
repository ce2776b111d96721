// The state file `{"version":1,"overrides":{...}}`: rewritten atomically (temporary file, fsync,
// rename) after each commit; a corrupt one is moved aside, never deleted, never fatal. It is as
// trusted as the control socket, so its directory must be writable by us (or root) only.
import Config
import Foundation
import Glibc

public struct StateFile: Sendable {
    public static let formatVersion = 1

    public let path: String
    /// The temporary file's name for one save attempt; random, so nobody can plant a file or a
    /// symlink under it in advance (tests replace it to do exactly that).
    let temporaryName: @Sendable (String) -> String

    public init(path: String) {
        self.init(path: path, temporaryName: { "\($0).tmp-\(StateFile.randomSuffix())" })
    }

    init(path: String, temporaryName: @escaping @Sendable (String) -> String) {
        self.path = path
        self.temporaryName = temporaryName
    }

    package static func randomSuffix() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Why the state file must not be used (its directory or the file itself can be written by
    /// another user), or nil.
    public func trustProblem(serviceUID: uid_t? = nil) -> String? {
        if let problem = FileTrust.directoryProblem(FileTrust.directory(of: path), holding: "state file", stickyIsEnough: false,
                                                    serviceUID: serviceUID) {
            return problem
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        if st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != serviceUID {
            return "the state file \(path) belongs to uid \(st.st_uid), not to this process (uid \(geteuid())) or root"
        }
        if (st.st_mode & S_IFMT) == S_IFREG && Int(st.st_mode) & 0o022 != 0 {
            return "the state file \(path) is writable by other users (mode \(FileTrust.octal(Int(st.st_mode) & 0o7777)))"
        }
        return nil
    }

    public enum LoadResult: Sendable, Equatable {
        /// No file yet: nothing was ever changed at run time.
        case missing
        case loaded(Overrides)
        /// Unreadable or not a state file; it was renamed to `movedTo` (nil when even that failed).
        case corrupt(reason: String, movedTo: String?)
        /// What was opened is not a file this process may trust (a link, another user's file,
        /// writable by others): not read.
        case refused(String)
    }

    private struct Document: Codable {
        var version: Int
        var overrides: Overrides
    }

    /// Reads the file it opened after checking that very file (`fstat` on the descriptor, no
    /// link followed): the trust check by path looked at a link while the read followed it.
    public func load(serviceUID: uid_t? = nil) -> LoadResult {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return .missing }
            if e == ELOOP { return .refused("the state file \(path) is a symbolic link; it must be a regular file") }
            return .corrupt(reason: "cannot read: \(String(cString: strerror(e)))", movedTo: nil)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .corrupt(reason: "cannot read: \(String(cString: strerror(errno)))", movedTo: nil) }
        if (st.st_mode & S_IFMT) != S_IFREG { return .refused("the state file \(path) is not a regular file") }
        if st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != serviceUID {
            return .refused("the state file \(path) belongs to uid \(st.st_uid), not to this process (uid \(geteuid())) or root")
        }
        if Int(st.st_mode) & 0o022 != 0 {
            return .refused("the state file \(path) is writable by other users (mode \(FileTrust.octal(Int(st.st_mode) & 0o7777)))")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .corrupt(reason: "cannot read: \(String(cString: strerror(errno)))", movedTo: nil)
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 64 << 20 { return .corrupt(reason: "larger than 64 MiB", movedTo: moveAside()) }
        }
        switch Self.decode(bytes) {
        case .success(let overrides): return .loaded(overrides)
        case .failure(let failure): return .corrupt(reason: failure.reason, movedTo: moveAside())
        }
    }

    struct DecodeFailure: Error {
        var reason: String
    }

    /// The overrides in a state file's bytes, or why they are not a state file. Pure, so the
    /// fuzzer drives it; `Overrides.applied(to:)` then checks each value like the command would.
    static func decode(_ bytes: [UInt8]) -> Result<Overrides, DecodeFailure> {
        let reason: String
        do {
            let document = try JSONDecoder().decode(Document.self, from: Data(bytes))
            if document.version == Self.formatVersion { return .success(document.overrides) }
            reason = "unsupported format version \(document.version) (expected \(Self.formatVersion))"
        } catch let DecodingError.dataCorrupted(context) {
            reason = "not valid JSON: \(context.debugDescription)"
        } catch let DecodingError.keyNotFound(key, _) {
            reason = "missing \"\(key.stringValue)\""
        } catch let DecodingError.typeMismatch(_, context) {
            reason = "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        } catch {
            reason = "\(error)"
        }
        return .failure(DecodeFailure(reason: reason))
    }

    /// Renames the file to `PATH.corrupt-<unix seconds>` so nothing is lost.
    private func moveAside() -> String? {
        var target = "\(path).corrupt-\(time(nil))"
        var n = 1
        while access(target, F_OK) == 0 {
            target = "\(path).corrupt-\(time(nil))-\(n)"
            n += 1
        }
        return rename(path, target) == 0 ? target : nil
    }

    public struct SaveError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Replaces the file with `overrides`; the old contents stay until the rename succeeds.
    public func save(_ overrides: Overrides) throws(SaveError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(Document(version: Self.formatVersion, overrides: overrides)) } catch {
            throw SaveError(description: "cannot encode the state: \(error)")
        }
        if let problem = FileTrust.directoryProblem(FileTrust.directory(of: path), holding: "state file", stickyIsEnough: false) {
            throw SaveError(description: "not saved: \(problem)")
        }
        // A new file that is ours alone: O_EXCL fails on anything already there, a symlink
        // included (O_NOFOLLOW), so a planted name is never opened, let alone truncated.
        var temporary = temporaryName(path)
        var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        var attempts = 1
        while fd < 0 && errno == EEXIST && attempts < 8 {
            temporary = temporaryName(path)
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            attempts += 1
        }
        guard fd >= 0 else { throw SaveError(description: "cannot create \(temporary): \(Self.reason(errno))") }
        var bytes = [UInt8](data)
        bytes.append(UInt8(ascii: "\n"))
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(temporary)
                throw SaveError(description: "cannot write \(temporary): \(Self.reason(e))")
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd)
            unlink(temporary)
            throw SaveError(description: "cannot fsync \(temporary): \(Self.reason(e))")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw SaveError(description: "cannot rename \(temporary) to \(path): \(Self.reason(e))")
        }
        // The rename itself is durable only once the directory is.
        let directory = (path as NSString).deletingLastPathComponent
        let dirFd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFd >= 0 {
            _ = fsync(dirFd)
            close(dirFd)
        }
    }

    private static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}
