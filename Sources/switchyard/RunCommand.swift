// `switchyard run --config FILE`: load, build, listen, serve; drain on SIGTERM/SIGINT.
import Control
import Dispatch
import Foundation
import Glibc
import Proxy
import Reactor
import Routing

enum RunCommand {
    static let usage = """
    usage: switchyard run --config FILE

    Runs the proxy. SIGTERM or SIGINT stops accepting, lets in-flight requests finish (up to
    timeouts.drainMs) and exits 0. Start-up errors (bad config, address in use) are one line
    on stderr and exit 1.

    """

    static func main(_ args: [String]) -> Int32 {
        guard let opts = Options(args, valued: ["--config"], command: "run") else { return 1 }
        if opts.wantsHelp { print(usage, terminator: ""); return 0 }
        guard let path = opts.values["--config"] ?? opts.positional.first else {
            CLI.fail("run: --config FILE is required")
            return 1
        }
        let loaded: ConfigLoadResult
        do { loaded = try ConfigLoader.load(path: path) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 1
        }
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let registry = EndpointRegistry()
        let snapshot: Routing.Snapshot
        do { snapshot = try SnapshotBuilder.build(loaded.config, version: 1, registry: registry) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 1
        }
        signal(SIGPIPE, SIG_IGN)
        let server: ProxyServer
        do {
            server = try ProxyServer(settings: loaded.config.proxySettings, snapshot: snapshot)
        } catch {
            CLI.fail("cannot listen on \(loaded.config.listeners.map { $0.address.description }.joined(separator: ", ")): \(error)")
            return 1
        }
        if let admin = loaded.config.admin {
            guard let a = SocketAddress(host: admin.address.numericHost, port: admin.address.port) else { return 1 }
            do {
                let adminServer = try AdminServer(address: a, server: server, registry: registry)
                adminServer.start()
                FileHandle.standardError.write(Data("switchyard: admin (/metrics, /healthz, /readyz) on \(adminServer.address)\n".utf8))
            } catch {
                CLI.fail("cannot listen on admin address \(admin.address): \(error)")
                return 1
            }
        }
        server.start()
        for a in server.boundAddresses {
            FileHandle.standardError.write(Data("switchyard: listening on \(a) with \(server.workerCount) worker(s)\n".utf8))
        }
        Signals.on([SIGTERM, SIGINT]) { _ in
            server.shutdown()
            exit(0)
        }
        dispatchMain()
    }
}
