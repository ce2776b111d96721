// Which protocol switches a route tunnels (its `upgrades`): a request offering several protocols
// in its Upgrade header is tunnelled only when the route allows every one of them, since the
// upstream may pick any. Names compare case-insensitively (RFC 9110 7.8), versions are ignored
// ("websocket/13" is websocket). Anything else is forwarded as a plain request.

private let upgradeName: Bytes = Array("upgrade".utf8)

extension Snapshot {
    /// Whether the request's upgrade offer may be tunnelled on `route`. Asked only for requests
    /// the parser found to be upgrade offers.
    public func allowsUpgrade(route: Int, _ request: some RoutingRequest) -> Bool {
        guard route >= 0 && route < routes.count else { return false }
        let allowed = routes[route].upgrades
        if allowed.isEmpty { return false }
        var offered = 0
        let refused = request.anyHeader(upgradeName) { value in
            var refusedHere = false
            forEachListElement(value) { element in
                offered += 1
                let name = protocolName(element)
                refusedHere = !allowed.contains { $0.withUnsafeBytes { name.bytesEqualIgnoringCase(lowercased: $0) } }
                return !refusedHere
            }
            return refusedHere
        }
        return !refused && offered > 0
    }
}

/// `name` of a `name/version` protocol.
@inline(__always)
private func protocolName(_ element: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var end = 0
    while end < element.count && element[end] != UInt8(ascii: "/") { end += 1 }
    return element.slice(0, end)
}

/// Calls `body` with each non-empty element of a comma-separated list, whitespace trimmed, until
/// it returns false.
private func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Bool) {
    let n = value.count
    var i = 0
    while i < n {
        while i < n && isSpace(value[i]) { i += 1 }
        let start = i
        while i < n && value[i] != UInt8(ascii: ",") { i += 1 }
        var end = i
        while end > start && isSpace(value[end - 1]) { end -= 1 }
        i += 1
        if end > start && !body(value.slice(start, end)) { return }
    }
}
