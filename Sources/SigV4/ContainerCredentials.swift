// Credentials from the container's credentials endpoint: ECS task roles
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served at 169.254.170.2) and EKS Pod Identity or any
// other agent (AWS_CONTAINER_CREDENTIALS_FULL_URI, with an Authorization token read from
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE on every call, since the agent rotates it, or from
// AWS_CONTAINER_AUTHORIZATION_TOKEN). As the SDKs allow, a full URI over plain http must name a
// loopback address or one of the ECS/EKS link-local addresses: anywhere else the token and
// the credentials would cross a network in the clear.
import Fetch
import Glibc
import Routing

public struct ContainerCredentials: AWSCredentialsProvider {
    let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var name: String {
        if let relative = CredentialsEndpoint.value(environment, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            return "container credentials (http://\(Self.ecsHost)\(relative))"
        }
        return "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI\(CredentialsEndpoint.value(environment, "AWS_CONTAINER_CREDENTIALS_FULL_URI").map { " " + $0 } ?? ""))"
    }

    static let ecsHost = "169.254.170.2"
    /// The hosts a full URI may name over plain http besides loopback: the ECS agent and the
    /// EKS Pod Identity agent (IPv4 and IPv6).
    static let linkLocalHosts = [ecsHost, "169.254.170.23", "fd00:ec2::23"]

    public func resolve() throws(CredentialsError) -> AWSCredentials? {
        let url: HTTPURL
        var headers: [(name: String, value: String)] = []
        // The relative URI wins when both are set, as in botocore; it never carries a token.
        if let relative = CredentialsEndpoint.value(environment, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = try CredentialsEndpoint.url("http://\(Self.ecsHost)\(relative.hasPrefix("/") ? "" : "/")\(relative)",
                                              from: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        } else if let full = CredentialsEndpoint.value(environment, "AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            url = try CredentialsEndpoint.url(full, from: "AWS_CONTAINER_CREDENTIALS_FULL_URI")
            guard url.secure || Self.allowedPlainHost(url.host) else {
                throw CredentialsError("AWS_CONTAINER_CREDENTIALS_FULL_URI: host \(url.host) is not allowed over http: "
                                       + "only a loopback address, \(Self.linkLocalHosts.joined(separator: ", ")), or an https:// URL")
            }
            if let token = try authorizationToken() { headers.append(("Authorization", token)) }
        } else {
            return nil
        }
        let what = "container credentials endpoint \(url.secure ? "https" : "http")://\(url.authority)\(url.path)"
        // botocore's timeout for this endpoint: 2 s.
        let response = try CredentialsEndpoint.fetch(FetchRequest(path: url.path, headers: headers + [("Accept", "application/json")]),
                                                     to: url, what: what, timeout: 2,
                                                     caFile: CredentialsEndpoint.value(environment, "AWS_CA_BUNDLE"))
        guard response.status == 200 else {
            throw CredentialsError("\(what): answered \(response.status)\(response.body.isEmpty ? "" : ": " + CredentialsEndpoint.excerpt(response.body))")
        }
        return try CredentialsEndpoint.credentials(json: response.body, source: name, what: what)
    }

    /// The token file's contents (read now: the agent rotates it), else the token variable.
    private func authorizationToken() throws(CredentialsError) -> String? {
        var token: String
        var origin: String
        if let file = CredentialsEndpoint.value(environment, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let text = SharedCredentialsFile.read(file) else {
                throw CredentialsError("cannot read the container authorization token file \(file) (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)")
            }
            (token, origin) = (text, "the container authorization token file \(file)")
        } else if let text = CredentialsEndpoint.value(environment, "AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            (token, origin) = (text, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
        } else {
            return nil
        }
        guard !token.isEmpty else { throw CredentialsError("\(origin) is empty") }
        // Like the SDKs: a line break would end the field and start another.
        guard token.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
            throw CredentialsError("\(origin) holds a line break or control character; it is not a legal header value")
        }
        return token
    }

    /// Loopback (127.0.0.0/8, ::1, "localhost") or one of the ECS/EKS link-local addresses.
    static func allowedPlainHost(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            let a = UInt32(bigEndian: v4.s_addr)
            return a >> 24 == 127 || a == 0xA9FE_AA02 || a == 0xA9FE_AA17   // 169.254.170.2, 169.254.170.23
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        var loopback = in6_addr()
        var eks = in6_addr()
        inet_pton(AF_INET6, "::1", &loopback)
        inet_pton(AF_INET6, "fd00:ec2::23", &eks)
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        return bytes == withUnsafeBytes(of: loopback) { Array($0) } || bytes == withUnsafeBytes(of: eks) { Array($0) }
    }
}
