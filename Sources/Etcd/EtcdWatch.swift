// A watch on every key under a prefix from a revision on, through the gateway's `/v3/watch`: one
// long answer carrying a JSON message per line (created, a batch of changes at one revision, a
// progress notification saying the store reached a revision with nothing for this watch, or the
// watch cancelled because its start revision was compacted away).
import Fetch
import Routing

public struct EtcdEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For a delete, the key and the revision of the delete (`modRevision`); no value.
    public var kv: EtcdKeyValue

    public init(kind: Kind, kv: EtcdKeyValue) {
        self.kind = kind
        self.kv = kv
    }
}

public enum EtcdWatchMessage: Sendable, Equatable {
    case created(revision: Int64)
    /// Every change made at `revision` (one transaction), in order.
    case changes(revision: Int64, [EtcdEvent])
    /// The store is at `revision`; nothing under the prefix changed up to it.
    case progress(revision: Int64)
}

/// Read by one thread (`next`); `cancel` may come from any.
public final class EtcdWatch: @unchecked Sendable {
    private let stream: FetchStreaming
    /// What arrived and is not yet a whole line (the reading thread's only).
    private var buffer: [UInt8] = []

    /// Opens a watch of `prefix` from `startRevision`, asking for progress notifications;
    /// `idleTimeout` bounds the wait for any message (set it above the server's progress interval).
    public init(_ client: EtcdClient, prefix: String, startRevision: Int64, idleTimeout: Double) throws(EtcdError) {
        let request: [String: Any] = ["create_request": ["key": EtcdJSON.base64(prefix),
                                                         "range_end": EtcdJSON.base64(EtcdJSON.rangeEnd(prefix: prefix)),
                                                         "start_revision": String(startRevision), "progress_notify": true]]
        stream = try client.openStream("/v3/watch", request, idleTimeout: idleTimeout)
        buffer = stream.response.body
    }

    /// The next message; throws `.compacted` when the start revision is gone, `.unreachable`
    /// when the stream ended or went quiet past the idle timeout.
    public func next() throws(EtcdError) -> EtcdWatchMessage {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if let message = try Self.message(line) { return message }
                continue
            }
            let open: Bool
            do throws(FetchError) { open = try stream.read(into: &buffer) } catch { throw EtcdError(.unreachable, "watch: \(error.description)") }
            guard open else { throw EtcdError(.unreachable, "watch: the server closed the stream") }
            if buffer.count > 64 << 20 { throw EtcdError(.malformed, "watch: a message over 64 MiB") }
        }
    }

    /// Ends the watch; a `next` blocked in another thread throws.
    public func cancel() { stream.cancel() }

    public func close() { stream.close() }

    /// One line of the stream; nil for a line that says nothing (blank).
    static func message(_ line: [UInt8]) throws(EtcdError) -> EtcdWatchMessage? {
        if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return nil }
        let object = try EtcdJSON.object(line, "watch")
        if object["error"] != nil { throw EtcdClient.failure(object, status: 200) }
        guard let result = object["result"] as? [String: Any] else { throw EtcdError(.malformed, "watch: a message without a result") }
        let revision = try EtcdJSON.revision(result)
        let compact = try EtcdJSON.int64(result, "compact_revision")
        if compact > 0 { throw EtcdError(.compacted(compactRevision: compact), "watch: revisions before \(compact) were compacted") }
        if result["canceled"] as? Bool == true {
            throw EtcdError(.server, "watch cancelled: \(result["cancel_reason"] as? String ?? "no reason given")")
        }
        if result["created"] as? Bool == true { return .created(revision: revision) }
        guard let list = result["events"] as? [Any], !list.isEmpty else { return .progress(revision: revision) }
        var events: [EtcdEvent] = []
        var at: Int64 = 0
        for item in list {
            guard let event = item as? [String: Any], let kv = event["kv"] else { throw EtcdError(.malformed, "watch: an event without kv") }
            let type = event["type"] as? String ?? "PUT"
            guard type == "PUT" || type == "DELETE" else { throw EtcdError(.malformed, "watch: event type \(type.prefix(20))") }
            let value = try EtcdJSON.keyValue(kv)
            at = max(at, value.modRevision)
            events.append(EtcdEvent(kind: type == "PUT" ? .put : .delete, kv: value))
        }
        return .changes(revision: at, events)
    }
}
