// `switchyard run --config FILE`: load, apply saved runtime state, listen, serve the control
// socket; reload on SIGHUP, drain on SIGTERM/SIGINT.
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
    timeouts.drainMs) and exits 0. SIGHUP re-reads FILE (an invalid file is refused and the
    running config kept). With a "control" section, runtime changes come through its socket
    (see switchyard ctl) and are saved to its stateFile. Start-up errors (bad config, address
    in use, a live control socket) are one line on stderr and exit 1.

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
        let state: RuntimeState
        do {
            state = try RuntimeState(loaded: loaded, source: .file(path), log: { line in
                FileHandle.standardError.write(Data("switchyard: \(line)\n".utf8))
            })
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 1
        }
        signal(SIGPIPE, SIG_IGN)
        // The control socket first: a live instance on it is a start-up error, found before
        // any listener is taken.
        let control: ControlServer?
        if let c = loaded.config.control {
            do { control = try ControlServer(c) } catch {
                CLI.fail(error.description)
                return 1
            }
            for w in control?.warnings ?? [] { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        } else {
            control = nil
        }
        let server: ProxyServer
        do {
            server = try ProxyServer(settings: state.config.proxySettings, snapshot: state.snapshot)
        } catch {
            control?.stop()
            CLI.fail("cannot listen on \(loaded.config.listeners.map { $0.address.description }.joined(separator: ", ")): \(error)")
            return 1
        }
        state.attach(server)
        state.startResolving()
        var adminServer: AdminServer?
        if let admin = loaded.config.admin {
            do {
                guard let a = SocketAddress(host: admin.address.numericHost ?? admin.address.host, port: admin.address.port) else {
                    throw SystemError("bind", EINVAL)
                }
                var limits = AdminServer.Limits()
                limits.maxConnections = admin.maxConnections
                limits.headerMs = UInt64(loaded.config.timeouts.headerMs)
                limits.idleMs = UInt64(loaded.config.timeouts.idleMs)
                adminServer = try AdminServer(address: a, server: server, registry: state.registry, limits: limits)
            } catch {
                control?.stop()
                CLI.fail("cannot listen on admin address \(admin.address): \(error)")
                return 1
            }
        }
        // Before the loop threads start (they inherit the blocked signals) and before the
        // lines below: a SIGTERM sent by whoever saw them must not be lost.
        Signals.on([SIGHUP]) { _ in state.reloadAndLog() }
        Signals.on([SIGTERM, SIGINT]) { _ in
            control?.stop()
            server.shutdown()
            exit(0)
        }
        server.start()
        if let adminServer {
            adminServer.start()
            FileHandle.standardError.write(Data("switchyard: admin (/metrics, /healthz, /readyz) on \(adminServer.address)\n".utf8))
        }
        for a in server.boundAddresses {
            FileHandle.standardError.write(Data("switchyard: listening on \(a) with \(server.workerCount) worker(s)\n".utf8))
        }
        if let control {
            control.start(ControlEngine(state: state))
            FileHandle.standardError.write(Data("switchyard: control socket \(control.path)\n".utf8))
        }
        Signals.waitForever()
    }
}
