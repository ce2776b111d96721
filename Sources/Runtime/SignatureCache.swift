// Signed sticky cookies' signature tables, shared across snapshot builds: a table depends only
// on the secret and the salt, so a build that keeps both (a weight change, a flip, an endpoint
// edit, a reload of an unrelated key) reuses the table the last snapshot holds instead of
// signing 10,000 buckets again. Entries are weak: a table lives as long as some snapshot holds
// it, and the cache never keeps one (or its secret) beyond that.
import Foundation
import Routing

public final class SignatureCache: @unchecked Sendable {
    /// What SnapshotBuilder uses unless told otherwise: every build in the process shares it.
    public static let shared = SignatureCache()

    private struct Key: Hashable {
        var secret: [UInt8]
        var salt: [UInt8]
    }

    private final class Entry {
        weak var table: SignatureTable?
        init(_ table: SignatureTable) { self.table = table }
    }

    // Guarded by `lock`.
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var signed = 0

    public init() {}

    /// The table for `secret` and `salt`: the one a live snapshot already holds, or a new one
    /// made with `signer` (which must be keyed with `secret`).
    public func table(secret: [UInt8], salt: [UInt8], signer: @escaping CookieSigner) -> SignatureTable {
        let key = Key(secret: secret, salt: salt)
        lock.lock()
        if let table = entries[key]?.table {
            lock.unlock()
            return table
        }
        lock.unlock()
        // Signed outside the lock: two builds racing for one key both sign, and one table wins.
        let made = SignatureTable(signer: signer, salt: salt)
        lock.lock()
        defer { lock.unlock() }
        if let table = entries[key]?.table { return table }
        entries = entries.filter { $0.value.table != nil }
        entries[key] = Entry(made)
        signed += 1
        return made
    }

    /// Tables made so far (each one 10,000 signatures), for tests and diagnostics.
    public var tablesSigned: Int {
        lock.lock()
        defer { lock.unlock() }
        return signed
    }
}
