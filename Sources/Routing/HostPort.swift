// The one reader of `host:port` text, for every place that takes it (listen and endpoint
// addresses, Host values, a Prometheus URL's authority, the Host a pool sends): a bracketed IPv6
// literal or a host, then an optional `:port`. It only splits; each caller says what it accepts
// (a port required or not, which hosts), so the rules of the split cannot drift apart.

public struct HostPort: Sendable, Equatable {
    /// The host without brackets.
    public var host: Substring
    /// The text after the colon; nil when there is none.
    public var port: Substring?
    /// The host was written in brackets (an IPv6 literal).
    public var bracketed: Bool

    public enum Failure: Error, Sendable, Equatable {
        /// `[` without its `]`.
        case unclosedBracket
        /// Something other than `:port` after `]`.
        case textAfterBracket
    }

    /// Splits `text`. Without brackets the last colon separates the port, so an unbracketed
    /// IPv6 address splits wrongly by design: callers refuse a host that still holds a colon.
    public static func split<S: StringProtocol>(_ text: S) -> Result<HostPort, Failure> where S.SubSequence == Substring {
        let whole = Substring(text)
        if whole.hasPrefix("[") {
            guard let close = whole.firstIndex(of: "]") else { return .failure(.unclosedBracket) }
            let host = whole[whole.index(after: whole.startIndex)..<close]
            let rest = whole[whole.index(after: close)...]
            if rest.isEmpty { return .success(HostPort(host: host, port: nil, bracketed: true)) }
            guard rest.hasPrefix(":") else { return .failure(.textAfterBracket) }
            return .success(HostPort(host: host, port: rest.dropFirst(), bracketed: true))
        }
        guard let colon = whole.lastIndex(of: ":") else { return .success(HostPort(host: whole, port: nil, bracketed: false)) }
        return .success(HostPort(host: whole[..<colon], port: whole[whole.index(after: colon)...], bracketed: false))
    }

    /// The port as a number in `range`, when it is all digits and inside it.
    public func portNumber(in range: ClosedRange<Int>) -> UInt16? {
        guard let port, !port.isEmpty, port.utf8.count <= 5,
              port.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let n = Int(port), range.contains(n) else { return nil }
        return UInt16(n)
    }
}
