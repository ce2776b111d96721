// Turning the config's `auth` sections into what requests carry: `auth.aws`, signing policies
// with credentials resolved the way the AWS SDKs do (CredentialsChain); `auth.google`, a Google
// ID token per audience (GoogleIDTokens.swift). Obtained when the config is started or reloaded:
// a config that signs without credentials, or whose token cannot be fetched, is refused like
// any other config error, naming the upstream. Runtime changes keep what the running config
// has; whatever expires is renewed in the background (CredentialRefresher).
import Config
import Proxy
import Routing
import SigV4

/// What the pools of a config prove themselves with, and what of it expires.
struct UpstreamCredentials {
    var signing: [String: UpstreamSigning] = [:]
    var bearer: [String: UpstreamBearer] = [:]
    /// Each renewable credential once (pools that share one share its LiveCredential), with
    /// the expiry of the value it holds now.
    var expiring: [(any ExpiringCredential, expiration: Int?)] = []
}

enum SigningSetup {
    static func credentials(_ config: Config, file: String, environment: [String: String] = processEnvironment()) throws(ConfigError)
        -> UpstreamCredentials {
        var out = UpstreamCredentials()
        var errors: [String] = []
        var aws: Result<AWSCredentialsRenewal, CredentialsError>?
        var tokens: [String: Result<GoogleIDTokenSource, CredentialsError>] = [:]
        func note(_ message: String) { if !errors.contains(message) { errors.append(message) } }
        for u in config.upstreams {
            let colors: [Color?] = u.blueGreen == nil ? [nil] : [.blue, .green]
            for color in colors {
                guard let auth = u.auth(color) else { continue }
                let own = color.flatMap { c in u.blueGreen?.settings(c).auth != nil ? c : nil }
                let path = "upstreams.\(u.name)\(own.map { "." + $0.name } ?? "").auth"
                let key = UpstreamSecurity.key(upstream: u.name, color: color?.name)
                if let policy = auth.aws {
                    if aws == nil {
                        do throws(CredentialsError) {
                            let chain = CredentialsChain.standard(environment: environment)
                            let first = try chain.resolve()
                            let renewal = AWSCredentialsRenewal(chain: chain, first: first)
                            aws = .success(renewal)
                            out.expiring.append((renewal, first.expiration))
                        } catch { aws = .failure(error) }
                    }
                    switch aws! {
                    case .failure(let error): note("\(file): \(path).aws: \(error)")
                    case .success(let renewal):
                        out.signing[key] = UpstreamSigning(region: policy.region, service: policy.service, maxBodyBytes: Int64(policy.maxBodyBytes),
                                                           clientAuthorization: policy.clientAuthorization == .move ? .move : .drop,
                                                           credentials: renewal.credentials)
                    }
                }
                if let google = auth.google {
                    if tokens[google.audience] == nil {
                        do throws(CredentialsError) {
                            let source = try GoogleIDTokenSource(audience: google.audience, environment: environment)
                            tokens[google.audience] = .success(source)
                            out.expiring.append((source, source.token.current.expiration))
                        } catch { tokens[google.audience] = .failure(error) }
                    }
                    switch tokens[google.audience]! {
                    case .failure(let error): note("\(file): \(path).google: cannot get an ID token for \(google.audience): \(error)")
                    case .success(let source):
                        out.bearer[key] = UpstreamBearer(clientAuthorization: google.clientAuthorization == .move ? .move : .drop,
                                                         token: source.token)
                    }
                }
            }
        }
        if !errors.isEmpty { throw ConfigError(messages: errors) }
        return out
    }
}

/// AWS credentials of a temporary provider, resolved again through the chain.
final class AWSCredentialsRenewal: ExpiringCredential {
    let chain: CredentialsChain
    let credentials: LiveCredential<AWSCredentials>
    private let source: String
    var provider: String { "aws" }
    var name: String { source }

    init(chain: CredentialsChain, first: AWSCredentials) {
        self.chain = chain
        credentials = LiveCredential(first)
        source = first.source
    }

    func renew() throws(CredentialsError) -> Int? {
        let next = try chain.resolve()
        credentials.replace(next)
        return next.expiration
    }
}

