// Temporary directories for sockets, configs and state files: made with mkdtemp (mode 0700,
// a name nobody else holds), removed by the test that made them.
import Foundation
import Glibc

public enum TemporaryDirectory {
    /// A new empty directory under the system's temporary directory, named `prefix-XXXXXX`.
    /// Unix socket paths must fit in 108 bytes, so keep `prefix` short.
    public static func make(prefix: String = "switchyard") throws -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        var template = Array((base + "/" + prefix + "-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestError("mkdtemp: errno \(errno)")
        }
        return String(cString: made)
    }

    /// Removes `path` and everything under it; a missing path is not an error.
    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
