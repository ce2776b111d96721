// Whether a request may use the headers that steer Switchyard (override, preview), and which
// headers never reach an upstream. Trust comes from where the client connects from or from a
// shared secret in a header; a header value alone never grants it.

enum HeaderName {
    static let cookie: Bytes = Array("cookie".utf8)
    static let defaultOverride: Bytes = Array("x-switchyard-variant".utf8)
    static let defaultPreview: Bytes = Array("x-switchyard-preview".utf8)
    /// The experiment unit the proxy tells the upstream; a client's own is never forwarded.
    static let unit: Bytes = Array("x-switchyard-unit".utf8)
}

extension RoutingTable {
    /// True when trust `index` (into `trusts`) accepts the request: every client, the client's
    /// address in one of its prefixes, or its secret header carrying the secret exactly.
    @inline(__always)
    func trusts<R: RoutingRequest>(_ index: Int32, _ request: R, client: ClientAddress) -> Bool {
        guard index >= 0 else { return false }
        let t = trusts[Int(index)]
        if t.everyone { return true }
        if client.known {
            for i in Int(t.prefixes.offset)..<Int(t.prefixes.offset + t.prefixes.count) {
                let p = prefixes[i]
                if client.high & p.maskHigh == p.high && client.low & p.maskLow == p.low { return true }
            }
        }
        guard t.secretHeader >= 0 else { return false }
        let secret = bytes(t.secret)
        return anyHeader(request, t.secretHeader) { constantTimeEqual($0, secret) }
    }
}

extension Snapshot {
    /// True for a header the proxy must not forward upstream: an override or preview header of
    /// any route or upstream (the default names included), or a secret header that grants trust.
    @inline(__always)
    public func isSteeringHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        withExtendedLifetime(self) {
            for span in table.strippedHeaders where Int(span.count) == name.count {
                if name.bytesEqualIgnoringCase(lowercased: table.bytes(span)) { return true }
            }
            return false
        }
    }

    /// True when the client at `address` may pass its X-Forwarded-For and Forwarded on.
    @inline(__always)
    public func trustsForwardingHeaders(from address: ClientAddress) -> Bool {
        trustForwardedFrom.contains(address)
    }
}
