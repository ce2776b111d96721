// Turning the config's `tls` sections into live TLS: a server (contexts per worker) for each
// TLS listener, a client context for each distinct upstream setting (kept across changes, so a
// weight change does not reload CA stores), and which endpoint ids speak TLS under which name.
import Config
import Glibc
import Proxy
import Routing
import TLS

final class TLSMaterial: @unchecked Sendable {
    /// Client contexts by settings; confined to the state queue.
    private var clients: [TLSClientSettings: TLSClient] = [:]

    /// A server per TLS listener, by listening address.
    static func listeners(_ config: Config, workers: Int, file: String) throws(ConfigError) -> [String: TLSServer] {
        var out: [String: TLSServer] = [:]
        var errors: [String] = []
        for (i, l) in config.listeners.enumerated() {
            guard let settings = l.tls else { continue }
            do throws(TLSError) {
                out[l.address.description] = try TLSServer(settings, workers: workers)
            } catch {
                errors.append("\(file): listeners[\(i)].tls: \(error)")
            }
        }
        if !errors.isEmpty { throw ConfigError(messages: errors) }
        return out
    }

    /// The pools that speak TLS for `snapshot` (built from `config`), and what the pools prove
    /// themselves with: `credentials`, or when nil those of `config`, obtained now.
    func security(_ config: Config, registry: EndpointRegistry, file: String,
                  credentials: UpstreamCredentials? = nil) throws(ConfigError) -> (UpstreamSecurity, UpstreamCredentials) {
        var pools: [String: UpstreamTLS] = [:]
        var errors: [String] = []
        var used = Set<TLSClientSettings>()
        for u in config.upstreams {
            let colors: [Color?] = u.blueGreen == nil ? [nil] : [.blue, .green]
            for color in colors {
                guard let settings = u.tls(color) else { continue }
                used.insert(settings)
                let client: TLSClient
                if let c = clients[settings] { client = c } else {
                    do throws(TLSError) { client = try TLSClient(settings) } catch {
                        errors.append("\(file): upstreams.\(u.name)\(color.map { "." + $0.name } ?? "").tls: \(error)")
                        continue
                    }
                    clients[settings] = client
                }
                let key = UpstreamSecurity.key(upstream: u.name, color: color?.name)
                pools[key] = UpstreamTLS(client: client, upstream: u.name, serverName: settings.serverName)
            }
        }
        var obtained = UpstreamCredentials()
        if let credentials { obtained = credentials } else {
            do throws(ConfigError) { obtained = try SigningSetup.credentials(config, file: file) } catch { errors += error.messages }
        }
        if !errors.isEmpty { throw ConfigError(messages: errors) }
        clients = clients.filter { used.contains($0.key) }
        return (UpstreamSecurity(pools: pools, signing: obtained.signing, bearer: obtained.bearer), obtained)
    }
}
