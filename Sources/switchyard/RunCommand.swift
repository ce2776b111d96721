// `switchyard run --config FILE`: load, apply saved runtime state, listen, serve the control
// socket; reload on SIGHUP, drain on SIGTERM/SIGINT.
import Admin
import CommandSocket
import Config
import Dispatch
import Fleet
import Foundation
import Glibc
import Proxy
import Reactor
import Rollouts
import Routing
import Runtime

enum RunCommand {
    static let usage = """
    usage: switchyard run --config FILE

    Runs the proxy. SIGTERM or SIGINT stops accepting, lets in-flight requests finish (up to
    timeouts.drainMs) and exits 0. SIGHUP re-reads FILE (an invalid file is refused and the
    running config kept); with "watchConfig": true a change of FILE does the same. SIGUSR1
    reopens the access log file (after logrotate moved it). With a "control" section, runtime
    changes come through its socket (see switchyard ctl) and are saved to its stateFile. Started
    as root with "user" (and "group"), it opens listeners, the control socket and files, then
    runs as that user. Under systemd (Type=notify) it reports READY, RELOADING and STOPPING on
    $NOTIFY_SOCKET. Start-up errors (bad config, address in use, a live control socket) are one
    line on stderr and exit 1; once running, every stderr line starts with its time.

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
        for w in loaded.warnings { ErrorLog.write("warning: \(w)") }
        let state: RuntimeState
        do {
            state = try RuntimeState(loaded: loaded, source: .file(path), log: { line in ErrorLog.write(line) })
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 1
        }
        // Fleet mode: the shared state is read before anything serves, so the first snapshot
        // is the fleet's (or the file's, while etcd does not answer).
        let fleet = loaded.config.fleet.map { FleetStore(settings: $0, state: state, version: switchyardVersion) }
        fleet?.readInitial()
        // Rollouts and guards act on the state like operators; systemd hears about reloads.
        let automation = ReleaseAutomation(state: state)
        state.reloadWillStart = { ServiceNotify.reloading() }
        state.reloadDidEnd = { ServiceNotify.ready() }
        signal(SIGPIPE, SIG_IGN)
        // The account to become once everything privileged is open (only root changes user).
        let account = loaded.config.serviceAccount
        let switching = account.map { !$0.isCurrent } ?? false
        if let account, switching, geteuid() != 0 {
            CLI.fail("cannot run as \(account): only root can change user, and this process is uid \(geteuid()); "
                + "start it as root or as \(account.user), or remove \"user\"")
            return 1
        }
        // The control socket first: a live instance on it is a start-up error, found before
        // any listener is taken.
        let control: ControlServer?
        if let c = loaded.config.control {
            do { control = try ControlServer(c, owner: switching ? account : nil) } catch {
                CLI.fail(error.description)
                return 1
            }
            for w in control?.warnings ?? [] { ErrorLog.write("warning: \(w)") }
        } else {
            control = nil
        }
        // The log writer opens the access log now: a path it cannot open is a start-up error.
        // Before a drop it is given to the service user, who reopens it on SIGUSR1.
        let logs: LogWriter
        do {
            logs = try LogWriter(accessLog: loaded.config.accessLog.map { $0.path == "stdout" ? .stdout : .file($0.path) },
                                 owner: switching ? account.map { (uid: $0.uid, gid: $0.gid) } : nil)
        } catch {
            control?.stop()
            CLI.fail("cannot open the access log \(loaded.config.accessLog?.path ?? ""): \(error)")
            return 1
        }
        let server: ProxyServer
        do {
            server = try ProxyServer(settings: state.config.proxySettings, snapshot: state.snapshot, logs: logs)
        } catch {
            control?.stop()
            CLI.fail("cannot listen on \(loaded.config.listeners.map { $0.address.description }.joined(separator: ", ")): \(error)")
            return 1
        }
        server.events.setSink { line in ErrorLog.write(line) }
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
                adminServer = try AdminServer(address: a, server: server, registry: state.registry, limits: limits,
                                              reloads: state.reloads, version: switchyardVersion,
                                              rollouts: automation.rollouts.board, guards: automation.guards,
                                              credentials: state.credentials, fleet: fleet, hooks: state.hooks)
            } catch {
                control?.stop()
                CLI.fail("cannot listen on admin address \(admin.address): \(error)")
                return 1
            }
        }
        // Every listener, socket and file is open, no thread has started: serve as `user` now.
        if let account, switching {
            do throws(ServiceAccountError) { try account.become() } catch {
                control?.stop()
                CLI.fail("cannot run as \"\(account.user)\": \(error)")
                return 1
            }
            ErrorLog.write("running as \(account)")
            for w in account.warningsAfterDrop(loaded, file: path) { ErrorLog.write("warning: \(w)") }
        } else if geteuid() == 0 && account == nil {
            ErrorLog.write("warning: \(path): running as root: set \"user\" to a dedicated account (e.g. \"switchyard\", "
                + "made with `useradd --system switchyard`; not \"nobody\", which other services share) to drop root once "
                + "listeners and files are open, or start as an unprivileged user with CAP_NET_BIND_SERVICE "
                + "(the systemd unit in deploy/ does this with DynamicUser)")
        }
        // Before the loop threads start (they inherit the blocked signals) and before the
        // lines below: a SIGTERM sent by whoever saw them must not be lost.
        Signals.on([SIGHUP]) { _ in state.reloadAndLog() }
        Signals.on([SIGUSR1]) { _ in
            logs.reopen()
            server.experiments.reopenLogs()
        }
        Signals.on([SIGTERM, SIGINT]) { signal in
            ServiceNotify.stopping()
            ErrorLog.write("\(signal == SIGTERM ? "SIGTERM" : "SIGINT"): shutting down, in-flight requests finish "
                + "(up to \(server.settings.drainMs) ms)")
            control?.stop()
            fleet?.stop()
            state.credentials.stop()
            server.shutdown()
            server.experiments.drainLogs()
            ErrorLog.write("stopped")
            exit(0)
        }
        server.start()
        if let fleet {
            fleet.start(listeners: server.boundAddresses.map { "\($0)" })
            ErrorLog.write("fleet: instance \(fleet.settings.instance), state under \(fleet.settings.prefix) in etcd "
                + fleet.settings.endpoints.map(\.authority).joined(separator: ", "))
        }
        if let adminServer {
            adminServer.start()
            ErrorLog.write("admin (/metrics, /status, /healthz, /readyz) on \(adminServer.address)")
        }
        if let accessLog = loaded.config.accessLog {
            ErrorLog.write("access log to \(accessLog.path)" + (accessLog.sample < 1 ? ", sampling \(accessLog.sample)" : ""))
        }
        for a in server.boundAddresses {
            ErrorLog.write("listening on \(a) with \(server.workerCount) worker(s)")
        }
        if let control {
            control.start(ControlEngine(state: state, automation: automation))
            ErrorLog.write("control socket \(control.path)")
        }
        if loaded.config.watchConfig {
            ConfigWatcher(path: path, state: state).start()
            FileHandle.standardError.write(Data("switchyard: watching \(path) for changes\n".utf8))
        }
        ServiceNotify.ready()
        Signals.waitForever()
    }
}
