// Path rewriting for a matched route, applied by the proxy into a caller buffer without
// allocating: strip a prefix, or put one in front.

extension Rewrite {
    /// The most bytes `rewrite(path:into:)` writes for a path of `pathCount` bytes.
    public func maxRewrittenCount(pathCount: Int) -> Int {
        switch self {
        case .stripPrefix: return max(pathCount + 1, 1)
        case .prefix(let prefix): return prefix.count + pathCount
        }
    }

    /// Writes the rewritten `path` (no query) into `out` and returns its length, or nil when
    /// `out` is too small. Stripping: a path without the prefix is kept as is; the remainder
    /// gets a leading "/" when it lacks one, so "/api" stripped from "/api" or "/api/" gives "/"
    /// and from "/apiv2" gives "/v2". Prefixing: prefix + path, byte for byte.
    public func rewrite(path: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        switch self {
        case .stripPrefix(let prefix):
            return prefix.withUnsafeBytes { removePrefix($0, from: path, into: out) }
        case .prefix(let prefix):
            return prefix.withUnsafeBytes { concatenate($0, path, into: out) }
        }
    }
}

extension Route {
    /// The path to send upstream: rewritten when the route has a rewrite, else copied.
    public func rewrite(path: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard let rewrite else { return concatenate(path, nil, into: out) }
        return rewrite.rewrite(path: path, into: out)
    }
}

extension Snapshot {
    /// The path to send upstream for `decision`'s route, like `Route.rewrite(path:into:)` but
    /// read from the frozen table (nothing retained); nil when `out` is too small. A decision
    /// without a route copies the path.
    public func rewrite(path: UnsafeRawBufferPointer, for decision: Decision,
                        into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard decision.route >= 0, decision.route < table.routes.count else { return concatenate(path, nil, into: out) }
        let route = table.routes[decision.route]
        return withExtendedLifetime(self) {
            switch route.rewrite {
            case .none: return concatenate(path, nil, into: out)
            case .stripPrefix: return removePrefix(table.bytes(route.rewriteBytes), from: path, into: out)
            case .prefix: return concatenate(table.bytes(route.rewriteBytes), path, into: out)
            }
        }
    }
}

/// `path` without `prefix`, with a leading "/" ensured; `path` as is when it lacks the prefix.
private func removePrefix(_ prefix: UnsafeRawBufferPointer, from path: UnsafeRawBufferPointer,
                         into out: UnsafeMutableRawBufferPointer) -> Int? {
    guard path.hasBytePrefix(prefix) else { return concatenate(path, nil, into: out) }
    let rest = path.slice(prefix.count, path.count)
    if rest.first == UInt8(ascii: "/") { return concatenate(rest, nil, into: out) }
    return withUnsafeBytes(of: UInt8(ascii: "/")) { slash in concatenate(slash, rest, into: out) }
}

/// Writes `first` then `second` into `out`; nil when they do not fit.
private func concatenate(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer?,
                         into out: UnsafeMutableRawBufferPointer) -> Int? {
    let secondCount = second?.count ?? 0
    let total = first.count + secondCount
    guard total <= out.count else { return nil }
    if !first.isEmpty { UnsafeMutableRawBufferPointer(rebasing: out[0..<first.count]).copyMemory(from: first) }
    if let second, !second.isEmpty {
        UnsafeMutableRawBufferPointer(rebasing: out[first.count..<total]).copyMemory(from: second)
    }
    return total
}
