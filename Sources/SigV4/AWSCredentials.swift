// AWS credentials and where they come from, in the order the AWS SDKs look: the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or "default"), then
// the providers that ask a server, each in its own file: web identity (STS), the container's
// endpoint, EC2 instance metadata.
// A provider answers nil when it has nothing configured (the next one is asked) and throws
// when what is configured is broken (a key without its secret): that is an error to fix, not
// a reason to sign with other credentials. Credentials may carry an expiry, for providers that
// hand out temporary ones.
import Fetch
import Glibc

public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When they stop working (seconds since the epoch); nil: long-term keys.
    public var expiration: Int?
    /// Which provider gave them, for log lines (never the keys themselves).
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Int? = nil, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }
}

public struct CredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One place credentials may come from.
public protocol AWSCredentialsProvider: Sendable {
    /// For messages: "environment", "shared credentials file /root/.aws/credentials (profile default)".
    var name: String { get }
    /// The credentials, nil when this provider has none configured.
    func resolve() throws(CredentialsError) -> AWSCredentials?
}

/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN.
public struct EnvironmentCredentials: AWSCredentialsProvider {
    let environment: [String: String]
    public var name: String { "environment" }

    public init(environment: [String: String]) { self.environment = environment }

    public func resolve() throws(CredentialsError) -> AWSCredentials? {
        let key = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (key, secret) {
        case (nil, nil): return nil
        case (.some, nil): throw CredentialsError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, .some): throw CredentialsError("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (let k?, let s?):
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: k, secretAccessKey: s, sessionToken: token, source: name)
        }
    }
}

/// A profile of the shared credentials file (an INI file: `[profile]` sections of
/// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`).
public struct SharedCredentialsFile: AWSCredentialsProvider {
    public let path: String
    public let profile: String
    public var name: String { "shared credentials file \(path) (profile \(profile))" }

    public init(path: String, profile: String) {
        self.path = path
        self.profile = profile
    }

    /// The file and profile the SDKs would read, given `environment`; nil when neither
    /// AWS_SHARED_CREDENTIALS_FILE nor HOME says where it is.
    public init?(environment: [String: String]) {
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if let file = environment["AWS_SHARED_CREDENTIALS_FILE"], !file.isEmpty {
            self.init(path: Self.expandingHome(file, environment), profile: profile)
        } else if let home = environment["HOME"], !home.isEmpty {
            self.init(path: home + "/.aws/credentials", profile: profile)
        } else {
            return nil
        }
    }

    private static func expandingHome(_ path: String, _ environment: [String: String]) -> String {
        guard path.hasPrefix("~/"), let home = environment["HOME"] else { return path }
        return home + path.dropFirst()
    }

    public func resolve() throws(CredentialsError) -> AWSCredentials? {
        guard let text = Self.read(path) else { return nil }   // no file: nothing configured here
        guard let values = Self.section(profile, in: text) else { return nil }
        let key = values["aws_access_key_id"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = values["aws_secret_access_key"].flatMap { $0.isEmpty ? nil : $0 }
        guard let key, let secret else {
            if key == nil && secret == nil { return nil }
            throw CredentialsError("\(path): profile \(profile) has \(key == nil ? "aws_secret_access_key but no aws_access_key_id" : "aws_access_key_id but no aws_secret_access_key")")
        }
        let token = (values["aws_session_token"] ?? values["aws_security_token"]).flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, source: name)
    }

    /// The `key = value` lines of section `[name]`; nil when there is no such section.
    /// Comments start with "#" or ";"; keys are case-insensitive.
    static func section(_ name: String, in text: String) -> [String: String]? {
        var current: String?
        var found: [String: String]?
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingWhitespace()
                if current == name && found == nil { found = [:] }
                continue
            }
            guard current == name, let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]).trimmingWhitespace().lowercased()
            found?[key] = String(line[line.index(after: eq)...]).trimmingWhitespace()
        }
        return found
    }

    /// The file's text; nil when it does not exist or cannot be read.
    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 1 << 20 { return nil }   // not a credentials file
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The providers in the SDKs' order; the first that has credentials wins.
public struct CredentialsChain: Sendable {
    public let providers: [any AWSCredentialsProvider]

    public init(_ providers: [any AWSCredentialsProvider]) { self.providers = providers }

    /// The SDKs' order: environment, shared credentials file, web identity, container
    /// credentials, EC2 instance metadata.
    public static func standard(environment: [String: String]) -> CredentialsChain {
        var providers: [any AWSCredentialsProvider] = [EnvironmentCredentials(environment: environment)]
        if let file = SharedCredentialsFile(environment: environment) { providers.append(file) }
        providers.append(WebIdentityCredentials(environment: environment))
        providers.append(ContainerCredentials(environment: environment))
        providers.append(InstanceMetadataCredentials(environment: environment))
        return CredentialsChain(providers)
    }

    public func resolve() throws(CredentialsError) -> AWSCredentials {
        for p in providers {
            if let c = try p.resolve() { return c }
        }
        throw CredentialsError("no AWS credentials found (looked in: \(providers.map(\.name).joined(separator: ", ")))")
    }
}

/// The process's environment as a dictionary.
public func processEnvironment() -> [String: String] {
    var out: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") { out[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
        p += 1
    }
    return out
}
