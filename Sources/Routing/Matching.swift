// Route matching: host (exact or wildcard suffix, case-insensitive, port and a trailing dot
// ignored), path prefix (on the normalised path), method and headers. A route matches when every configured part matches.

extension RoutingTable {
    /// True when `request` (whose method, host and path were read once) satisfies `route`.
    @inline(__always)
    func matches<R: RoutingRequest>(_ route: TableRoute, _ request: R, method: UnsafeRawBufferPointer,
                                    host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer) -> Bool {
        if route.hosts.count > 0 && !matchesHost(route.hosts, host) { return false }
        if route.hasPathPrefix && !path.hasBytePrefix(bytes(route.pathPrefix)) { return false }
        if !methodAllowed(method, route.methods) { return false }
        var i = Int(route.headers.offset)
        let end = i + Int(route.headers.count)
        while i < end {
            if !matchesHeader(headers[i], request) { return false }
            i += 1
        }
        return true
    }

    /// `*.example.com` (stored as `.example.com`) matches any name ending in `.example.com`,
    /// one label or more, but not `example.com` itself.
    @inline(__always)
    private func matchesHost(_ list: Span, _ host: UnsafeRawBufferPointer) -> Bool {
        for i in Int(list.offset)..<Int(list.offset + list.count) {
            let candidate = hosts[i]
            let name = bytes(candidate.name)
            if candidate.suffix {
                if host.count > name.count && host.hasByteSuffixIgnoringCase(lowercased: name) { return true }
            } else if host.bytesEqualIgnoringCase(lowercased: name) {
                return true
            }
        }
        return false
    }

    /// Presence, or any value equal byte for byte.
    @inline(__always)
    private func matchesHeader<R: RoutingRequest>(_ header: TableHeader, _ request: R) -> Bool {
        if header.presence { return anyHeader(request, header.name) { _ in true } }
        let expected = bytes(header.value)
        return anyHeader(request, header.name) { $0.bytesEqual(expected) }
    }
}

/// `a.example.` names the same host as `a.example` (a fully qualified name): one trailing dot
/// is dropped before hosts are compared.
@inline(__always)
func withoutTrailingDot(_ host: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    host.count > 1 && host[host.count - 1] == UInt8(ascii: ".") ? host.slice(0, host.count - 1) : host
}

/// Drops a trailing `:port` (digits only). A bracketed IPv6 literal keeps its brackets; a bare
/// IPv6 address (several colons, no brackets) is left whole.
@inline(__always)
func hostWithoutPort(_ host: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var i = host.count
    while i > 0 && isDigit(host[i - 1]) { i -= 1 }
    guard i > 0, i < host.count, host[i - 1] == UInt8(ascii: ":") else { return host }
    let colon = i - 1
    if colon > 0 && host[colon - 1] == UInt8(ascii: "]") { return host.slice(0, colon) }
    var j = 0
    while j < colon {
        if host[j] == UInt8(ascii: ":") { return host }
        j += 1
    }
    return host.slice(0, colon)
}
