// Test doubles for Routing: a RoutingRequest backed by byte arrays and small snapshot builders.
import Routing

/// A request whose buffers live as long as the object; header names are matched lowercased.
final class TestRequest: RoutingRequest {
    private var owned: [UnsafeMutableRawBufferPointer] = []
    private(set) var method = UnsafeRawBufferPointer(start: nil, count: 0)
    private(set) var host = UnsafeRawBufferPointer(start: nil, count: 0)
    private(set) var path = UnsafeRawBufferPointer(start: nil, count: 0)
    private var headers: [(name: Bytes, value: UnsafeRawBufferPointer)] = []

    init(_ method: String = "GET", host: String = "example.com", path: String = "/",
         headers: [(String, String)] = [], cookies: [(String, String)] = []) {
        self.method = copy(method)
        self.host = copy(host)
        self.path = copy(path)
        for (name, value) in headers {
            self.headers.append((Array(name.lowercased().utf8), copy(value)))
        }
        if !cookies.isEmpty {
            let line = cookies.map { "\($0.0)=\($0.1)" }.joined(separator: "; ")
            self.headers.append((Array("cookie".utf8), copy(line)))
        }
    }

    deinit {
        for buffer in owned { buffer.deallocate() }
    }

    func forEachHeader(_ lowercasedName: Bytes, _ body: (UnsafeRawBufferPointer) -> Bool) {
        for header in headers where header.name == lowercasedName {
            if !body(header.value) { return }
        }
    }

    private func copy(_ text: String) -> UnsafeRawBufferPointer {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        owned.append(buffer)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count])
    }
}

func b(_ text: String) -> Bytes { Array(text.utf8) }

func pool(_ port: UInt16) -> UpstreamKind {
    .pool(Pool(endpoints: [Endpoint(host: "127.0.0.1", port: port, id: Int(port))]))
}

/// Upstreams 0 "stable", 1 "canary", 2 "third", 3 "shadow", 4 "app" (blue/green, live blue,
/// preview header "x-preview"), 5 "shadow2".
func upstreams(live: Color = .blue, previewHeader: String? = "x-preview", previewTrust: HeaderTrust = .everyone) -> [Upstream] {
    [
        Upstream(name: "stable", kind: pool(9001)),
        Upstream(name: "canary", kind: pool(9002)),
        Upstream(name: "third", kind: pool(9003)),
        Upstream(name: "shadow", kind: pool(9004)),
        Upstream(name: "app", kind: .blueGreen(BlueGreen(
            blue: Pool(endpoints: [Endpoint(host: "127.0.0.1", port: 9005, id: 9005)]),
            green: Pool(endpoints: [Endpoint(host: "127.0.0.1", port: 9006, id: 9006)]),
            live: live, previewHeader: previewHeader.map(b), previewTrust: previewTrust))),
        Upstream(name: "shadow2", kind: pool(9007)),
    ]
}

/// A split over upstreams 0, 1, 2 named after them, with the given weights.
func split(_ weights: [Int], rules: [Rule] = [], overrideHeader: String? = "x-switchyard-variant",
           overrideTrust: HeaderTrust = .everyone, sticky: Sticky? = nil) -> Split {
    let names = ["stable", "canary", "third"]
    let variants = weights.enumerated().map { Variant(name: names[$0.offset], upstream: $0.offset, weight: $0.element) }
    return Split(variants: variants, rules: rules, overrideHeader: overrideHeader.map(b), overrideTrust: overrideTrust,
                 sticky: sticky)
}

func sticky(salt: String = "checkout", key: StickyKey? = nil, signer: CookieSigner? = nil, preferCookie: Bool? = nil) -> Sticky {
    Sticky(cookieName: b("sy_checkout"), maxAgeSeconds: 2_592_000, key: key, salt: b(salt), signer: signer,
           preferCookie: preferCookie)
}

func route(_ name: String = "r", match: Match = Match(), rewrite: Rewrite? = nil,
           target: RouteTarget = .upstream(0), mirrors: [Mirror] = []) -> Route {
    Route(name: name, match: match, rewrite: rewrite, target: target, mirrors: mirrors, variantHeader: b("x-variant"))
}

func snapshot(_ routes: [Route], live: Color = .blue, previewHeader: String? = "x-preview",
              previewTrust: HeaderTrust = .everyone) -> Snapshot {
    Snapshot(version: 1, routes: routes, upstreams: upstreams(live: live, previewHeader: previewHeader, previewTrust: previewTrust))
}

/// The cookie value `sticky` issues for `bucket`.
func cookieValue(_ sticky: Sticky, bucket: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: Sticky.maxCookieValueBytes)
    let n = buffer.withUnsafeMutableBytes { sticky.writeCookieValue(bucket: bucket, into: $0) }
    return String(decoding: buffer[0..<n], as: UTF8.self)
}

func parse(_ sticky: Sticky, _ value: String) -> Int32? {
    Array(value.utf8).withUnsafeBytes { sticky.parseCookie($0) }
}

extension Bytes {
    var text: String { String(decoding: self, as: UTF8.self) }
}
