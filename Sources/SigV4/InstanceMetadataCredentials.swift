// Credentials of the EC2 instance's role, from the instance metadata service, IMDSv2 first: a
// session token from PUT /latest/api/token, then the role's name and its credentials, each GET
// carrying the token. Last in the chain and, unlike the others, a service that does not answer
// at all (not on EC2: no route, refused, 1 s without a byte, the SDKs' timeout) is "nothing
// configured", so a machine with no credentials anywhere still gets the chain's clear error.
// AWS_EC2_METADATA_DISABLED=true turns it off; AWS_EC2_METADATA_SERVICE_ENDPOINT (or
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6) says where it is.
import Fetch
import Routing

public struct InstanceMetadataCredentials: AWSCredentialsProvider {
    let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    var disabled: Bool { CredentialsEndpoint.value(environment, "AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" }

    public var name: String {
        disabled ? "EC2 instance metadata (off: AWS_EC2_METADATA_DISABLED)" : "EC2 instance metadata (\(endpointText))"
    }

    private var endpointText: String {
        if let text = CredentialsEndpoint.value(environment, "AWS_EC2_METADATA_SERVICE_ENDPOINT") { return text }
        return CredentialsEndpoint.value(environment, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")?.lowercased() == "ipv6"
            ? "http://[fd00:ec2::254]" : "http://169.254.169.254"
    }

    static let timeout = 1.0
    static let credentialsPath = "/latest/meta-data/iam/security-credentials/"

    public func resolve() throws(CredentialsError) -> AWSCredentials? {
        guard !disabled else { return nil }
        let base = try CredentialsEndpoint.url(endpointText, from: "AWS_EC2_METADATA_SERVICE_ENDPOINT")
        let prefix = base.path.hasSuffix("/") ? String(base.path.dropLast()) : base.path
        let what = "EC2 instance metadata at \(base.secure ? "https" : "http")://\(base.authority)"

        guard case .answered(let tokenAnswer) = try ask(FetchRequest(method: "PUT", path: prefix + "/latest/api/token",
                                                                    headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")]),
                                                       base, what) else { return nil }
        var headers: [(name: String, value: String)] = []
        switch tokenAnswer.status {
        case 200:
            let token = tokenAnswer.bodyText
            guard !token.isEmpty, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw CredentialsError("\(what): the session token is empty or not printable ASCII")
            }
            headers.append(("X-aws-ec2-metadata-token", token))
        case 400:
            throw CredentialsError("\(what): the token request was refused (400)")
        default:
            // As the SDKs: a service without IMDSv2 (403, 404, 405, ...) is asked without a
            // token, unless IMDSv1 is switched off.
            if CredentialsEndpoint.value(environment, "AWS_EC2_METADATA_V1_DISABLED")?.lowercased() == "true" {
                throw CredentialsError("\(what): answered \(tokenAnswer.status) to the token request and AWS_EC2_METADATA_V1_DISABLED is set")
            }
        }

        guard case .answered(let roles) = try ask(FetchRequest(path: prefix + Self.credentialsPath, headers: headers), base, what) else {
            return nil
        }
        if roles.status == 404 { return nil }   // an instance without a role: nothing here
        guard roles.status == 200 else { throw CredentialsError("\(what): answered \(roles.status) to the role list") }
        let role = roles.bodyText.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map { $0.trimmingWhitespace() } ?? ""
        if role.isEmpty { return nil }
        guard role.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }) else {
            throw CredentialsError("\(what): the role name \"\(CredentialsEndpoint.excerpt(Array(role.utf8)))\" is not a name")
        }

        guard case .answered(let answer) = try ask(FetchRequest(path: prefix + Self.credentialsPath + role, headers: headers), base, what) else {
            return nil
        }
        let roleWhat = "\(what) (role \(role))"
        guard answer.status == 200 else { throw CredentialsError("\(roleWhat): answered \(answer.status) to the credentials request") }
        return try CredentialsEndpoint.credentials(json: answer.body, source: "EC2 instance metadata (role \(role))", what: roleWhat)
    }

    private enum Outcome {
        case answered(FetchResponse)
        case absent
    }

    /// The service's answer; `.absent` when nothing answered at all.
    private func ask(_ request: FetchRequest, _ base: HTTPURL, _ what: String) throws(CredentialsError) -> Outcome {
        do throws(FetchError) {
            return .answered(try Fetch.perform(request, to: base, timeout: Self.timeout, maxBytes: CredentialsEndpoint.maxAnswerBytes))
        } catch {
            if error.unreachable { return .absent }
            throw CredentialsError("\(what): \(error)")
        }
    }
}
