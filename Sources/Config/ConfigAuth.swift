// An upstream's `auth` section: how the proxy proves to a locked-down endpoint that the request
// comes through it. `aws`: every request signed with AWS Signature Version 4 (a Lambda function
// URL with AuthType AWS_IAM); `google`: a Google ID token for `audience` (Cloud Run, Cloud
// Functions) as `Authorization: Bearer`. Set on the upstream or on one color of a blue/green
// upstream; one of the two.
import Routing

extension Config {
    public struct UpstreamAuth: Sendable, Equatable {
        public var aws: AWSSigning?
        public var google: GoogleIDToken?
        public init(aws: AWSSigning? = nil, google: GoogleIDToken? = nil) {
            self.aws = aws
            self.google = google
        }
    }

    /// `"google": { "audience": "https://fn-abc-ew.a.run.app", "clientAuthorization": "move" }`.
    public struct GoogleIDToken: Sendable, Equatable {
        /// The token's `aud`: the service's URL, as the Cloud Run invoker check expects.
        public var audience: String
        public var clientAuthorization = AWSSigning.ClientAuthorization.move

        public init(audience: String) { self.audience = audience }
    }

    /// `"aws": { "service": "lambda", "region": "eu-west-1", "maxBodyBytes": N, "clientAuthorization": "move" }`.
    public struct AWSSigning: Sendable, Equatable {
        /// What becomes of the client's own Authorization header, which the signature replaces.
        public enum ClientAuthorization: String, Sendable, Equatable {
            /// Sent as `X-Forwarded-Authorization` (Google's gateways do the same), so a function
            /// that authenticates its end users still sees their credential.
            case move
            /// Not sent at all.
            case drop
        }

        public var service: String
        public var region: String
        /// The signature covers the body's hash, so a body is read whole before it is sent:
        /// larger bodies are answered 413. Lambda's synchronous payload limit by default.
        public var maxBodyBytes = AWSSigning.defaultMaxBodyBytes
        public var clientAuthorization = ClientAuthorization.move

        public static let defaultMaxBodyBytes = 6 * 1024 * 1024

        public init(service: String, region: String) {
            self.service = service
            self.region = region
        }
    }
}

extension Config.Upstream {
    /// How requests to the pool `color` names are authenticated: the color's own block, else
    /// the upstream's.
    public func auth(_ color: Color?) -> Config.UpstreamAuth? {
        if let color, let bg = blueGreen, let own = bg.settings(color).auth { return own }
        return auth
    }
}

extension ConfigParser {
    func upstreamAuth(_ value: ConfigValue) -> Config.UpstreamAuth? {
        guard let object = value.object(keys: ["aws", "google"]) else { return nil }
        switch (object["aws"], object["google"]) {
        case (let aws?, nil): return awsSigning(aws).map { Config.UpstreamAuth(aws: $0) }
        case (nil, let google?): return googleIDToken(google).map { Config.UpstreamAuth(google: $0) }
        case (_?, let google?):
            google.error("\"aws\" and \"google\" cannot both be set: requests are either signed or carry a token")
            return nil
        case (nil, nil):
            value.error("needs \"aws\" or \"google\"")
            return nil
        }
    }

    private func googleIDToken(_ value: ConfigValue) -> Config.GoogleIDToken? {
        guard let object = value.object(keys: ["audience", "clientAuthorization"]) else { return nil }
        let clientAuthorization = self.clientAuthorization(object)
        guard let field = object.required("audience"), let text = field.nonEmptyString() else { return nil }
        guard Self.isHTTPURL(text), text.utf8.allSatisfy({ $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "%") }) else {
            field.error("must be the service's http(s) URL (like \"https://fn-abc-ew.a.run.app\"), got \"\(text)\"")
            return nil
        }
        guard let clientAuthorization else { return nil }
        var token = Config.GoogleIDToken(audience: text)
        token.clientAuthorization = clientAuthorization
        return token
    }

    /// `clientAuthorization`: "move" (the default) or "drop"; nil after an error.
    private func clientAuthorization(_ object: ConfigObject) -> Config.AWSSigning.ClientAuthorization? {
        guard let field = object["clientAuthorization"], let text = field.string() else { return .move }
        guard let choice = Config.AWSSigning.ClientAuthorization(rawValue: text) else {
            field.error("must be \"move\" (sent as X-Forwarded-Authorization) or \"drop\", got \"\(text)\"")
            return nil
        }
        return choice
    }

    private func awsSigning(_ value: ConfigValue) -> Config.AWSSigning? {
        guard let object = value.object(keys: ["service", "region", "maxBodyBytes", "clientAuthorization"]) else { return nil }
        let service = object.required("service").flatMap { awsName($0, example: "lambda") }
        let region = object.required("region").flatMap { awsName($0, example: "eu-west-1") }
        let maxBodyBytes = object.int("maxBodyBytes", default: Config.AWSSigning.defaultMaxBodyBytes, 0...(64 * 1024 * 1024))
        guard let clientAuthorization = clientAuthorization(object), let service, let region else { return nil }
        var signing = Config.AWSSigning(service: service, region: region)
        signing.maxBodyBytes = maxBodyBytes
        signing.clientAuthorization = clientAuthorization
        return signing
    }

    /// A region or service name: lower-case letters, digits and "-" (it goes into the
    /// credential scope as written).
    private func awsName(_ value: ConfigValue, example: String) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        let valid = text.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
        if !valid || text.utf8.count > 64 {
            value.error("must be lower-case letters, digits and \"-\" (like \"\(example)\"), got \"\(text)\"")
            return nil
        }
        return text
    }
}
