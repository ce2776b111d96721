// Finding header values and cookies in a RoutingRequest in place: values are handed to a
// predicate while the request's buffers are valid, never copied out.

@inline(__always)
func isSpace(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
}

extension RoutingRequest {
    /// True when some value of the header `lowercasedName` satisfies `predicate`; stops at the
    /// first that does.
    @inline(__always)
    func anyHeader(_ lowercasedName: Bytes, _ predicate: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var found = false
        forEachHeader(lowercasedName) { value in
            if predicate(value) { found = true }
            return !found
        }
        return found
    }
}

/// Calls `body` with each `name=value` pair of one Cookie header value, trimmed, until it
/// returns false. Pairs without `=` are skipped.
@inline(__always)
func forEachCookiePair(_ header: UnsafeRawBufferPointer,
                       _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool) {
    let n = header.count
    var i = 0
    while i < n {
        while i < n && isSpace(header[i]) { i += 1 }
        let nameStart = i
        var equals = -1
        while i < n && header[i] != UInt8(ascii: ";") {
            if equals < 0 && header[i] == UInt8(ascii: "=") { equals = i }
            i += 1
        }
        let pairEnd = i
        i += 1
        if equals < 0 { continue }
        var nameEnd = equals
        while nameEnd > nameStart && isSpace(header[nameEnd - 1]) { nameEnd -= 1 }
        var valueStart = equals + 1
        while valueStart < pairEnd && isSpace(header[valueStart]) { valueStart += 1 }
        var valueEnd = pairEnd
        while valueEnd > valueStart && isSpace(header[valueEnd - 1]) { valueEnd -= 1 }
        if !body(header.slice(nameStart, nameEnd), header.slice(valueStart, valueEnd)) { return }
    }
}
