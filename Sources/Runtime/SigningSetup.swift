// Turning the config's `auth.aws` sections into signing policies, with credentials resolved the
// way the AWS SDKs do (environment, then the shared credentials file). Resolved when the config
// is applied (start, reload, runtime change): a config that signs without credentials is
// refused like any other config error, naming the upstream.
import Config
import Proxy
import Routing
import SigV4

enum SigningSetup {
    static func signing(_ config: Config, file: String, environment: [String: String] = processEnvironment()) throws(ConfigError)
        -> [String: UpstreamSigning] {
        var out: [String: UpstreamSigning] = [:]
        var errors: [String] = []
        var credentials: Result<AWSCredentials, CredentialsError>?
        for u in config.upstreams {
            let colors: [Color?] = u.blueGreen == nil ? [nil] : [.blue, .green]
            for color in colors {
                guard let aws = u.auth(color)?.aws else { continue }
                if credentials == nil {
                    do throws(CredentialsError) { credentials = .success(try CredentialsChain.standard(environment: environment).resolve()) }
                    catch { credentials = .failure(error) }
                }
                let own = color.flatMap { c in u.blueGreen?.settings(c).auth != nil ? c : nil }
                let path = "upstreams.\(u.name)\(own.map { "." + $0.name } ?? "").auth.aws"
                switch credentials! {
                case .failure(let error):
                    let message = "\(file): \(path): \(error)"
                    if !errors.contains(message) { errors.append(message) }
                case .success(let c):
                    out[UpstreamSecurity.key(upstream: u.name, color: color?.name)] =
                        UpstreamSigning(region: aws.region, service: aws.service, maxBodyBytes: Int64(aws.maxBodyBytes),
                                        clientAuthorization: aws.clientAuthorization == .move ? .move : .drop, credentials: c)
                }
            }
        }
        if !errors.isEmpty { throw ConfigError(messages: errors) }
        return out
    }
}
