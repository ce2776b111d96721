// A client of etcd's v3 API through its JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
// `/v3/lease/*`, `/v3/auth/authenticate`), over the control plane's HTTP client: plain or TLS
// with a client certificate, username and password auth with the token renewed when etcd says
// it expired. A request goes to the endpoint that answered last; one that cannot be reached or
// has no leader hands the request to the next.
import Fetch
import Routing
import Synchronization
public import TLS

public final class EtcdClient: Sendable {
    public struct Settings: Sendable {
        public var endpoints: [HTTPURL]
        public var tls: TLSClientSettings
        public var username: String?
        public var password: String?
        /// For one request, connect to answer.
        public var timeout: Double

        public init(endpoints: [HTTPURL], tls: TLSClientSettings = TLSClientSettings(), username: String? = nil, password: String? = nil,
                    timeout: Double = 2) {
            self.endpoints = endpoints
            self.tls = tls
            self.username = username
            self.password = password
            self.timeout = timeout
        }
    }

    public let settings: Settings
    private struct State {
        var preferred = 0
        var token: String?
    }
    private let state = Mutex(State())

    public init(_ settings: Settings) { self.settings = settings }

    // MARK: key-value

    /// The keys under `prefix` (or the one key `prefix` names when `prefix` is false) and the
    /// store's revision they were read at. `revision` > 0 reads as of that revision.
    public func range(_ key: String, prefix: Bool = true, revision: Int64 = 0) throws(EtcdError) -> (revision: Int64, kvs: [EtcdKeyValue]) {
        var body: [String: Any] = ["key": EtcdJSON.base64(key)]
        if prefix { body["range_end"] = EtcdJSON.base64(EtcdJSON.rangeEnd(prefix: key)) }
        if revision > 0 { body["revision"] = String(revision) }
        let answer = try call("/v3/kv/range", body)
        return (try EtcdJSON.revision(answer), try EtcdJSON.keyValues(answer, "kvs"))
    }

    /// Writes `value` at `key` (under `lease` when non-zero); answers the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws(EtcdError) -> Int64 {
        try EtcdJSON.revision(try call("/v3/kv/put", EtcdOp.put(key, value, lease: lease).fields))
    }

    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) throws(EtcdError) -> Int64 {
        try EtcdJSON.revision(try call("/v3/kv/deleterange", EtcdOp.delete(key, prefix: prefix).fields))
    }

    /// Runs `success` when every compare holds, else `failure`, as one revision.
    public func txn(_ compares: [EtcdCompare], success: [EtcdOp], failure: [EtcdOp] = []) throws(EtcdError) -> (succeeded: Bool, revision: Int64) {
        let answer = try call("/v3/kv/txn", ["compare": compares.map(\.fields), "success": success.map(\.request),
                                             "failure": failure.map(\.request)])
        return (answer["succeeded"] as? Bool ?? false, try EtcdJSON.revision(answer))
    }

    // MARK: leases

    /// A lease of `ttl` seconds; answers its id and the TTL etcd granted.
    public func grantLease(ttl: Int64) throws(EtcdError) -> (id: Int64, ttl: Int64) {
        let answer = try call("/v3/lease/grant", ["TTL": String(ttl)])
        let id = try EtcdJSON.int64(answer, "ID")
        guard id != 0 else { throw EtcdError(.malformed, "lease grant answered no ID") }
        return (id, try EtcdJSON.int64(answer, "TTL"))
    }

    /// Renews `lease`; answers its TTL, 0 when it has expired.
    public func keepAlive(lease: Int64) throws(EtcdError) -> Int64 {
        let answer = try call("/v3/lease/keepalive", ["ID": String(lease)])
        return try EtcdJSON.int64(answer["result"] as? [String: Any] ?? answer, "TTL")
    }

    public func revoke(lease: Int64) throws(EtcdError) {
        _ = try call("/v3/lease/revoke", ["ID": String(lease)])
    }

    // MARK: requests

    /// POSTs `body` to `path` on the preferred endpoint, then the others; answers the JSON.
    func call(_ path: String, _ body: [String: Any]) throws(EtcdError) -> [String: Any] {
        try onEndpoints { (url, token) throws(EtcdError) in try post(path, body, to: url, token: token) }
    }

    /// `body` with an endpoint and the auth token to send: on the endpoint that answered last,
    /// then each other one that cannot be reached; an auth token etcd calls expired is renewed
    /// once. The one place requests and streams choose their endpoint.
    private func onEndpoints<T>(_ body: (HTTPURL, String?) throws(EtcdError) -> T) throws(EtcdError) -> T {
        var renewed = false
        while true {
            do throws(EtcdError) {
                return try firstAnswering(body)
            } catch where error.kind == .authentication && !renewed && settings.username != nil {
                renewed = true
                state.withLock { $0.token = nil }
            }
        }
    }

    private func firstAnswering<T>(_ body: (HTTPURL, String?) throws(EtcdError) -> T) throws(EtcdError) -> T {
        let start = state.withLock { $0.preferred }
        var failures: [String] = []
        for step in 0..<settings.endpoints.count {
            let index = (start + step) % settings.endpoints.count
            let url = settings.endpoints[index]
            do throws(EtcdError) {
                let answer = try body(url, try token(at: url))
                state.withLock { $0.preferred = index }
                return answer
            } catch where error.kind == .unreachable {
                failures.append("\(url.authority): \(error.description)")
            }
        }
        throw EtcdError(.unreachable, failures.isEmpty ? "no etcd endpoint configured" : failures.joined(separator: "; "))
    }

    /// The auth token to send (authenticating first when there is none), nil without auth.
    private func token(at url: HTTPURL) throws(EtcdError) -> String? {
        guard let name = settings.username else { return nil }
        if let token = state.withLock({ $0.token }) { return token }
        let answer = try post("/v3/auth/authenticate", ["name": name, "password": settings.password ?? ""], to: url, token: nil)
        guard let token = answer["token"] as? String, !token.isEmpty,
              token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw EtcdError(.malformed, "authenticate answered no usable token") }
        state.withLock { $0.token = token }
        return token
    }

    func post(_ path: String, _ body: [String: Any], to url: HTTPURL, token: String?) throws(EtcdError) -> [String: Any] {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", token)) }
        let response: FetchResponse
        do throws(FetchError) {
            response = try Fetch.perform(FetchRequest(method: "POST", path: path, headers: headers, body: EtcdJSON.encode(body)),
                                         to: url, tls: settings.tls, timeout: settings.timeout, maxBytes: 64 << 20)
        } catch {
            throw EtcdError(.unreachable, error.description)
        }
        let object = try EtcdJSON.object(response.body, path)
        if response.status == 200 && object["error"] == nil { return object }
        throw Self.failure(object, status: response.status)
    }

    /// A streamed answer to `body` (a watch), from the first endpoint that takes it.
    func openStream(_ path: String, _ body: [String: Any], idleTimeout: Double) throws(EtcdError) -> FetchStreaming {
        try onEndpoints { (url, token) throws(EtcdError) in
            var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
            if let token { headers.append(("Authorization", token)) }
            let stream: FetchStreaming
            do throws(FetchError) {
                stream = try FetchStreaming(FetchRequest(method: "POST", path: path, headers: headers, body: EtcdJSON.encode(body)),
                                            to: url, tls: settings.tls, timeout: settings.timeout, idleTimeout: idleTimeout)
            } catch {
                throw EtcdError(.unreachable, error.description)
            }
            guard stream.response.status == 200 else {
                stream.close()
                throw stream.response.status == 401 ? EtcdError(.authentication, "answered 401")
                                                    : EtcdError(.unreachable, "answered \(stream.response.status)")
            }
            return stream
        }
    }

    /// The error an answer carries (gRPC codes: 11 out of range, 14 unavailable, 16 unauthenticated).
    static func failure(_ object: [String: Any], status: Int) -> EtcdError {
        let message = (object["message"] as? String) ?? (object["error"] as? String) ?? "answered \(status)"
        let code = (try? EtcdJSON.int64(object, "code")) ?? 0
        if message.contains("compacted") { return EtcdError(.compacted(compactRevision: 0), message) }
        if code == 16 || message.contains("invalid auth token") || message.contains("user name is empty") {
            return EtcdError(.authentication, message)
        }
        if code == 14 || message.contains("no leader") || message.contains("leader changed") || status == 503 {
            return EtcdError(.unreachable, message)
        }
        return EtcdError(.server, message)
    }
}

/// A condition of a transaction on one key.
public struct EtcdCompare: Sendable {
    public enum Target: Sendable {
        /// The key was last changed at this revision (0: the key does not exist).
        case modRevision(Int64)
        case value([UInt8])
    }
    public var key: String
    public var target: Target

    public init(key: String, _ target: Target) {
        self.key = key
        self.target = target
    }

    var fields: [String: Any] {
        var out: [String: Any] = ["key": EtcdJSON.base64(key), "result": "EQUAL"]
        switch target {
        case .modRevision(let r):
            out["target"] = "MOD"
            out["mod_revision"] = String(r)
        case .value(let v):
            out["target"] = "VALUE"
            out["value"] = EtcdJSON.base64(v)
        }
        return out
    }
}

/// One operation of a transaction.
public enum EtcdOp: Sendable {
    case put(String, [UInt8], lease: Int64)
    case delete(String, prefix: Bool)

    var fields: [String: Any] {
        switch self {
        case .put(let key, let value, let lease):
            var out: [String: Any] = ["key": EtcdJSON.base64(key), "value": EtcdJSON.base64(value)]
            if lease != 0 { out["lease"] = String(lease) }
            return out
        case .delete(let key, let prefix):
            var out: [String: Any] = ["key": EtcdJSON.base64(key)]
            if prefix { out["range_end"] = EtcdJSON.base64(EtcdJSON.rangeEnd(prefix: key)) }
            return out
        }
    }

    var request: [String: Any] {
        switch self {
        case .put: return ["request_put": fields]
        case .delete: return ["request_delete_range": fields]
        }
    }
}
