// The header fields an upstream pool sets on every request (`setHeaders`, e.g. a function key),
// read from the frozen table on the request path: no String, nothing retained, and nothing to
// do for a pool that sets none.

/// One field set on every request to a pool. `value` is a credential: nothing prints it.
public struct SetHeader: Sendable, Equatable, CustomStringConvertible {
    /// As written in the config; sent as is, matched against the client's case-insensitively.
    public var name: Bytes
    public var value: Bytes

    public init(name: Bytes, value: Bytes) {
        self.name = name
        self.value = value
    }

    public var description: String { String(decoding: name, as: UTF8.self) + ": (secret)" }

    /// The whole field line as sent, "Name: value\r\n".
    public var line: Bytes { name + Array(": ".utf8) + value + [13, 10] }
}

/// A pool's set fields in the frozen table. Valid while the snapshot it came from is held.
public struct SetHeaderFields {
    let fields: UnsafeBufferPointer<TableSetHeader>
    let arena: UnsafeRawPointer?

    public static var none: SetHeaderFields { SetHeaderFields(fields: UnsafeBufferPointer(start: nil, count: 0), arena: nil) }

    @inline(__always)
    public var isEmpty: Bool { fields.isEmpty }

    /// True when the client's field called `name` is one of these (and so is not forwarded).
    @inline(__always)
    public func replaces(_ name: UnsafeRawBufferPointer) -> Bool {
        for f in fields where Int(f.name.count) == name.count {
            if name.bytesEqualIgnoringCase(lowercased: bytes(f.name)) { return true }
        }
        return false
    }

    /// Each field's whole line, "Name: value\r\n", in config order.
    @inline(__always)
    public func forEachLine(_ body: (UnsafeRawBufferPointer) -> Void) {
        for f in fields { body(bytes(f.line)) }
    }

    @inline(__always)
    private func bytes(_ span: Span) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: arena.map { $0 + Int(span.offset) }, count: Int(span.count))
    }
}

extension Snapshot {
    /// The fields to set on requests to `upstream`'s pool for `color` (the live color when
    /// nil); `.none` for a pool without any. The caller holds the snapshot while it uses them.
    @inline(__always)
    public func setHeaders(upstream: Int, color: Color?) -> SetHeaderFields {
        guard upstream >= 0, upstream < table.upstreams.count else { return .none }
        let u = table.upstreams[upstream]
        let span = u.blueGreen && (color ?? u.live) == .green ? u.greenSetHeaders : u.setHeaders
        guard span.count > 0 else { return .none }
        return SetHeaderFields(fields: UnsafeBufferPointer(rebasing: table.setHeaders[Int(span.offset)..<Int(span.offset + span.count)]),
                               arena: UnsafeRawPointer(table.arena.baseAddress))
    }
}
