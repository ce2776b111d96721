// The Host an upstream pool asks for (`hostHeader`), read from the frozen table on the request
// path: no String, nothing retained.

extension Snapshot {
    /// The Host to send to `upstream`'s pool for `color` (the live color when nil), or nil to
    /// pass the client's. The bytes live as long as the snapshot: the caller holds it.
    @inline(__always)
    public func hostHeader(upstream: Int, color: Color?) -> UnsafeRawBufferPointer? {
        guard upstream >= 0, upstream < table.upstreams.count else { return nil }
        let u = table.upstreams[upstream]
        let span = u.blueGreen && (color ?? u.live) == .green ? u.greenHostHeader : u.hostHeader
        return span.count > 0 ? table.bytes(span) : nil
    }
}

extension Pool {
    /// The host part of `hostHeader` (its port dropped), the name TLS sends as SNI when the
    /// upstream's `tls.serverName` is not set; nil without a hostHeader or when it is an IP
    /// address. Then SNI falls back to the endpoint's `hostName`.
    public var hostHeaderName: String? {
        guard let value = hostHeader, case .success(let parts) = HostPort.split(value), !parts.bracketed else { return nil }
        let host = String(parts.host)
        return ClientAddress(host) == nil ? host : nil
    }
}
