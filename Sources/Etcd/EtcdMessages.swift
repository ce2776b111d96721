// What etcd's v3 JSON gateway sends and takes: keys and values in base64, 64-bit numbers as
// decimal strings, an error as `{"error", "code", "message"}`. Every field is read strictly and
// without traps: an answer that is not what etcd sends is an EtcdError, never a crash.

public struct EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No endpoint answered (connection refused, timed out, TLS failed).
        case unreachable
        /// A watch or range asked for a revision compacted away; `compactRevision` is the oldest kept.
        case compacted(compactRevision: Int64)
        /// The auth token expired or is wrong; authenticate again.
        case authentication
        /// etcd answered with an error.
        case server
        /// The answer was not what etcd sends.
        case malformed
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// One key's state.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

enum EtcdJSON {
    static func object(_ bytes: [UInt8], _ what: String) throws(EtcdError) -> [String: Any] {
        guard let object = JSONValues.read(bytes) as? [String: Any] else { throw EtcdError(.malformed, "\(what): not a JSON object") }
        return object
    }

    static func encode(_ object: [String: Any]) -> [UInt8] { JSONValues.write(object) }

    /// A 64-bit number as the gateway writes it (a decimal string; a JSON number is taken too);
    /// a missing field is 0, as in protobuf.
    static func int64(_ object: [String: Any], _ key: String) throws(EtcdError) -> Int64 {
        guard let value = object[key] else { return 0 }
        guard let n = JSONValues.integer(value) else {
            throw EtcdError(.malformed, "\(key) \"\(String(describing: value).prefix(24))\" is not a 64-bit number")
        }
        return n
    }

    static func bytes(_ object: [String: Any], _ key: String) throws(EtcdError) -> [UInt8] {
        guard let value = object[key] else { return [] }
        guard let text = value as? String, let bytes = Base64.decode(text) else { throw EtcdError(.malformed, "\(key) is not base64") }
        return bytes
    }

    static func base64(_ bytes: [UInt8]) -> String { Base64.encode(bytes) }
    static func base64(_ text: String) -> String { base64(Array(text.utf8)) }

    static func keyValue(_ any: Any) throws(EtcdError) -> EtcdKeyValue {
        guard let kv = any as? [String: Any] else { throw EtcdError(.malformed, "a key-value that is not an object") }
        return EtcdKeyValue(key: String(decoding: try bytes(kv, "key"), as: UTF8.self), value: try bytes(kv, "value"),
                            createRevision: try int64(kv, "create_revision"), modRevision: try int64(kv, "mod_revision"),
                            version: try int64(kv, "version"), lease: try int64(kv, "lease"))
    }

    static func keyValues(_ object: [String: Any], _ key: String) throws(EtcdError) -> [EtcdKeyValue] {
        guard let list = object[key] else { return [] }
        guard let array = list as? [Any] else { throw EtcdError(.malformed, "\(key) is not a list") }
        var out: [EtcdKeyValue] = []
        for item in array { out.append(try keyValue(item)) }
        return out
    }

    /// The revision of the store when the answer was made.
    static func revision(_ object: [String: Any]) throws(EtcdError) -> Int64 {
        guard let header = object["header"] as? [String: Any] else { throw EtcdError(.malformed, "no header in the answer") }
        return try int64(header, "revision")
    }

    /// The end of the range of every key starting with `prefix` (the prefix with its last byte
    /// below 0xff raised by one), as etcdctl --prefix makes it.
    static func rangeEnd(prefix: String) -> [UInt8] {
        var end = Array(prefix.utf8)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]   // every key
    }
}
