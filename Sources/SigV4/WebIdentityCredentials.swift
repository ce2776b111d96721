// Credentials for a role assumed with a web identity token: AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE (what EKS injects for IAM roles for service accounts), traded at
// STS with AssumeRoleWithWebIdentity. As botocore does, the call is the Query API sent unsigned
// (the token is the proof) as a POST of a form, and the token file is read on every call:
// Kubernetes rotates it under the same path.
import Fetch
import Glibc
import Routing

public struct WebIdentityCredentials: AWSCredentialsProvider {
    let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var name: String {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE\(CredentialsEndpoint.value(environment, "AWS_WEB_IDENTITY_TOKEN_FILE").map { " " + $0 } ?? ""))"
    }

    public func resolve() throws(CredentialsError) -> AWSCredentials? {
        // As the SDKs: no token file means this provider is not configured; a token file
        // without a role is a configuration to fix.
        guard let tokenFile = CredentialsEndpoint.value(environment, "AWS_WEB_IDENTITY_TOKEN_FILE") else { return nil }
        guard let role = CredentialsEndpoint.value(environment, "AWS_ROLE_ARN") else {
            throw CredentialsError("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
        }
        guard let token = SharedCredentialsFile.read(tokenFile) else {
            throw CredentialsError("cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE)")
        }
        guard !token.isEmpty else { throw CredentialsError("the web identity token file \(tokenFile) is empty") }
        let session = CredentialsEndpoint.value(environment, "AWS_ROLE_SESSION_NAME") ?? "switchyard-\(time(nil))"
        let endpoint = try stsEndpoint()
        let what = "STS AssumeRoleWithWebIdentity at \(endpoint.secure ? "https" : "http")://\(endpoint.authority) for \(role)"
        let form = Self.form([("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                              ("RoleSessionName", session), ("WebIdentityToken", token)])
        let request = FetchRequest(method: "POST", path: endpoint.path,
                                   headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Array(form.utf8))
        let response = try CredentialsEndpoint.fetch(request, to: endpoint, what: what, timeout: 5,
                                                     caFile: CredentialsEndpoint.value(environment, "AWS_CA_BUNDLE"))
        return try Self.credentials(response, what: what, source: name)
    }

    /// AWS_ENDPOINT_URL_STS (else AWS_ENDPOINT_URL, the SDKs' variable for every service) when
    /// set; else the regional endpoint of AWS_REGION (else AWS_DEFAULT_REGION), which botocore
    /// and the other SDKs now use by default; the global https://sts.amazonaws.com only when no
    /// region is set.
    func stsEndpoint() throws(CredentialsError) -> HTTPURL {
        for variable in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
            if let text = CredentialsEndpoint.value(environment, variable) { return try CredentialsEndpoint.url(text, from: variable) }
        }
        let variable = CredentialsEndpoint.value(environment, "AWS_REGION") != nil ? "AWS_REGION" : "AWS_DEFAULT_REGION"
        guard let region = CredentialsEndpoint.value(environment, variable) else {
            return HTTPURL(secure: true, host: "sts.amazonaws.com", port: 443, path: "/")
        }
        guard region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }) else {
            throw CredentialsError("\(variable) \"\(CredentialsEndpoint.excerpt(Array(region.utf8)))\" is not a region name (like \"eu-west-1\")")
        }
        let domain = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return HTTPURL(secure: true, host: "sts.\(region).\(domain)", port: 443, path: "/")
    }

    /// The credentials of an AssumeRoleWithWebIdentity answer, or its error as an error.
    static func credentials(_ response: FetchResponse, what: String, source: String) throws(CredentialsError) -> AWSCredentials {
        let root: XMLElement
        do throws(CredentialsError) { root = try XMLElement.parse(response.body) } catch {
            throw CredentialsError("\(what): answered \(response.status) with \(response.body.isEmpty ? "no body" : "a body that is \(error)")")
        }
        if let error = root.name == "Error" ? root : root.child("Error") {
            let code = error.child("Code")?.text ?? "no code"
            let message = error.child("Message")?.text ?? "no message"
            throw CredentialsError("\(what): \(code): \(CredentialsEndpoint.excerpt(Array(message.utf8)))")
        }
        guard response.status == 200 else { throw CredentialsError("\(what): answered \(response.status) without an error") }
        guard let c = root.descendant("AssumeRoleWithWebIdentityResult", "Credentials") else {
            throw CredentialsError("\(what): the answer has no AssumeRoleWithWebIdentityResult/Credentials")
        }
        func field(_ name: String) throws(CredentialsError) -> String {
            guard let v = c.child(name) else { throw CredentialsError("\(what): the answer has no Credentials/\(name)") }
            return v.text
        }
        return try CredentialsEndpoint.credentials(key: try field("AccessKeyId"), secret: try field("SecretAccessKey"),
                                                   token: try field("SessionToken"), expiration: try field("Expiration"),
                                                   source: source, what: what)
    }

    /// `application/x-www-form-urlencoded`, every byte but RFC 3986's unreserved ones
    /// percent-encoded (as botocore's query serializer does).
    static func form(_ pairs: [(String, String)]) -> String {
        var out: [UInt8] = []
        for (i, (key, value)) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            SigV4Canonical.encode(key.utf8, keepSlash: false, into: &out)
            out.append(UInt8(ascii: "="))
            SigV4Canonical.encode(value.utf8, keepSlash: false, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
