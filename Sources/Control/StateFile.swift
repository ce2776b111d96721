// The state file `{"version":1,"overrides":{...}}`: rewritten atomically (temporary file, fsync,
// rename) after each commit; a corrupt one is moved aside, never deleted, never fatal.
import Foundation
import Glibc

public struct StateFile: Sendable {
    public static let formatVersion = 1

    public let path: String

    public init(path: String) { self.path = path }

    public enum LoadResult: Sendable, Equatable {
        /// No file yet: nothing was ever changed at run time.
        case missing
        case loaded(Overrides)
        /// Unreadable or not a state file; it was renamed to `movedTo` (nil when even that failed).
        case corrupt(reason: String, movedTo: String?)
    }

    private struct Document: Codable {
        var version: Int
        var overrides: Overrides
    }

    public func load() -> LoadResult {
        let bytes: [UInt8]
        switch ConfigFiles.read(path) {
        case .success(let read): bytes = read
        case .failure(let failure) where failure.errno == ENOENT: return .missing
        case .failure(let failure): return .corrupt(reason: "cannot read: \(failure)", movedTo: nil)
        }
        let reason: String
        do {
            let document = try JSONDecoder().decode(Document.self, from: Data(bytes))
            if document.version == Self.formatVersion { return .loaded(document.overrides) }
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
        return .corrupt(reason: reason, movedTo: moveAside())
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
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SaveError(description: "cannot write \(temporary): \(Self.reason(errno))") }
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
