// `switchyard demo`: the embedded default. Starts in-process upstreams (blue, green, canary,
// shadow) and the proxy with a 90/10 sticky canary, a blue/green upstream with preview and a
// 100% mirror that compares the shadow's answers, and a control socket in /tmp (removed at
// exit); prints curl and ctl lines that show each feature, a rollout with the traffic it is
// judged on among them.
import Admin
import CommandSocket
import Config
import Dispatch
import Foundation
import Glibc
import Proxy
import Reactor
import Rollouts
import Routing
import Runtime

enum DemoCommand {
    static let usage = """
    usage: switchyard demo [--port N] [--workers N] [--admin-port N]

    Runs Switchyard on 127.0.0.1:PORT (default 8080) in front of four built-in upstreams on
    loopback: blue and green (the two colors of `checkout`), canary, and shadow. The route
    sends 90% of new users to stable (checkout) and 10% to canary, sticky by cookie, and copies
    every GET to shadow, comparing its answers with the primary's (`show shadow`). The admin
    listener (/metrics, /healthz, /readyz) is on 127.0.0.1, on --admin-port (default: a free
    port, printed). --workers N: event loops (default 1). It prints the commands to try, a
    progressive rollout with the traffic it is judged on among them. Ctrl-C stops it.

    """

    static func config(port: Int, workers: Int, blue: SocketAddress, green: SocketAddress,
                       canary: SocketAddress, shadow: SocketAddress, controlSocket: String?, adminPort: Int = 0) -> String {
        let control = controlSocket.map { #", "control": { "socket": "\#($0)" }"# } ?? ""
        return """
        {
          "workers": \(workers),
          "listeners": [ { "address": "127.0.0.1:\(port)" } ],
          "admin": { "address": "127.0.0.1:\(adminPort)" },
          "upstreams": {
            "checkout": {
              "blue": { "endpoints": ["\(blue)"] },
              "green": { "endpoints": ["\(green)"] },
              "live": "blue",
              // The demo listens on loopback only, so every client may preview and override.
              "preview": { "header": "X-Switchyard-Preview", "trustedSources": ["0.0.0.0/0", "::/0"] },
              "warmup": { "path": "/", "requests": 3, "timeoutMs": 2000 }
            },
            "canary": { "endpoints": ["\(canary)"] },
            "shadow": { "endpoints": ["\(shadow)"] }
          },
          "routes": [
            {
              "name": "shop",
              "split": [
                { "variant": "stable", "upstream": "checkout", "weight": 90 },
                { "variant": "canary", "upstream": "canary", "weight": 10 }
              ],
              "rules": [ { "cookie": { "beta": "1" }, "variant": "canary" } ],
              "override": { "header": "X-Switchyard-Variant", "trustedSources": ["0.0.0.0/0", "::/0"] },
              "sticky": { "cookie": "sy-shop", "maxAgeSeconds": 604800 },
              "mirror": [ { "upstream": "shadow", "percent": 100, "compare": { "status": "exact", "latency": true } } ]
            }
          ]\(control)
        }
        """
    }

    static func main(_ args: [String]) -> Int32 {
        guard let opts = Options(args, valued: ["--port", "--workers", "--admin-port"], command: "demo") else { return 1 }
        if opts.wantsHelp { print(usage, terminator: ""); return 0 }
        guard let port = Int(opts.values["--port"] ?? "8080"), port > 0, port < 65536 else {
            CLI.fail("demo: --port must be a port number")
            return 1
        }
        let workers = Int(opts.values["--workers"] ?? "1") ?? 1
        guard let adminPort = Int(opts.values["--admin-port"] ?? "0"), adminPort >= 0, adminPort < 65536 else {
            CLI.fail("demo: --admin-port must be a port number")
            return 1
        }
        var upstreams: [String: EchoServer] = [:]
        for name in ["blue", "green", "canary", "shadow"] {
            do {
                let s = try EchoServer(listen: SocketAddress(host: "127.0.0.1", port: 0)!, name: name, delayMs: 0)
                s.start()
                upstreams[name] = s
            } catch {
                CLI.fail("demo: cannot start the \(name) upstream: \(error)")
                return 1
            }
        }
        let socketPath = "/tmp/switchyard-demo-\(getpid()).sock"
        let text = config(port: port, workers: workers, blue: upstreams["blue"]!.address, green: upstreams["green"]!.address,
                          canary: upstreams["canary"]!.address, shadow: upstreams["shadow"]!.address, controlSocket: socketPath,
                          adminPort: adminPort)
        let source = ConfigSource(name: "<demo>") { () throws(ConfigError) in
            try ConfigLoader.parse(data: Data(text.utf8), file: "<demo>")
        }
        let state: RuntimeState
        do {
            state = try RuntimeState(loaded: try source.load(), source: source, log: { line in ErrorLog.write(line) })
        } catch {
            CLI.fail("demo: \(error)")
            return 1
        }
        let automation = ReleaseAutomation(state: state)
        state.reloadWillStart = { ServiceNotify.reloading() }
        state.reloadDidEnd = { ServiceNotify.ready() }
        let snapshot = state.snapshot
        signal(SIGPIPE, SIG_IGN)
        let control: ControlServer
        do { control = try ControlServer(path: socketPath, mode: 0o600) } catch {
            CLI.fail("demo: \(error)")
            return 1
        }
        let server: ProxyServer
        do {
            server = try ProxyServer(settings: state.config.proxySettings, snapshot: snapshot, logs: try LogWriter(accessLog: nil))
        } catch {
            control.stop()
            CLI.fail("demo: cannot listen on 127.0.0.1:\(port): \(error) (try --port)")
            return 1
        }
        server.events.setSink { line in ErrorLog.write(line) }
        state.attach(server)
        let admin: AdminServer
        do {
            admin = try AdminServer(address: SocketAddress(host: "127.0.0.1", port: UInt16(adminPort))!, server: server,
                                    registry: state.registry, reloads: state.reloads, version: switchyardVersion,
                                              rollouts: automation.rollouts.board, guards: automation.guards)
        } catch {
            control.stop()
            CLI.fail("demo: cannot listen on 127.0.0.1:\(adminPort) for the admin listener: \(error) (try --admin-port)")
            return 1
        }
        server.start()
        admin.start()
        control.start(ControlEngine(state: state, automation: automation))
        let metricsURL = "http://\(admin.address)/metrics"
        let base = "http://127.0.0.1:\(port)"
        // The binary's own path: `switchyard` is rarely on PATH when the demo runs from `swift run`.
        let binary = executablePath()
        let ctl = "\(binary.contains(" ") ? "'\(binary)'" : binary) ctl --socket \(socketPath)"
        // A real canary cookie (bucket 9950 lies in canary's range [9000, 10000)).
        var canaryCookie = "sy-shop=..."
        if case .split(let split) = snapshot.routes[0].target, let sticky = split.sticky {
            var buf = [UInt8](repeating: 0, count: Sticky.maxCookieValueBytes)
            let n = buf.withUnsafeMutableBytes { sticky.writeCookieValue(bucket: 9950, into: $0) }
            canaryCookie = "sy-shop=" + String(decoding: buf[0..<n], as: UTF8.self)
        }
        print("""
        Switchyard demo on \(base)
          upstreams: blue \(upstreams["blue"]!.address)  green \(upstreams["green"]!.address)  canary \(upstreams["canary"]!.address)  shadow \(upstreams["shadow"]!.address)
          metrics: \(metricsURL)

        Try:
          curl -si \(base)/ | grep -iE 'x-switchyard-variant|set-cookie|x-echo-name'
              a new user: 90% stable (blue), 10% canary, remembered in the sy-shop cookie
          curl -si -b '\(canaryCookie)' \(base)/ | grep -i x-echo-name
              a returning user keeps the variant their cookie's bucket falls in (here: canary)
          curl -si -b 'beta=1' \(base)/ | grep -i x-echo-name
              a rule: the beta cookie pins the canary
          curl -si -H 'X-Switchyard-Variant: canary' \(base)/ | grep -i x-echo-name
              the override header picks a variant (QA)
          curl -si -H 'X-Switchyard-Preview: green' -H 'X-Switchyard-Variant: stable' \(base)/ | grep -i x-echo-name
              preview the idle green color before flipping it live
          curl -s \(upstreams["shadow"]!.address.description.replacingOccurrences(of: "127.0.0.1", with: "http://127.0.0.1"))/count
              the shadow got a copy of every GET (its "request" counter), marked X-Switchyard-Shadow: 1
          \(ctl) flip checkout
              warm green up, then make it live in one atomic swap (the next request is served by green)
          while curl -s -o /dev/null \(base)/; do sleep 0.01; done &
              traffic from new users for the rollout below to judge (it stops when the demo does)
          \(ctl) rollout start shop canary --steps 10,50,100 --step-seconds 10 --max-error-rate 0.01 --min-requests 10
              a progressive rollout: canary 10%, 50%, 100%, each step gated on its 5xx share; `show rollout shop` to follow
          \(ctl) show shadow
              the shadow's answers compared with the primary's: match rate, latencies, the last mismatches
          \(ctl) show upstreams
              live colors, endpoints and their in-flight requests; `... ctl --socket \(socketPath) help` for more
          curl -s \(metricsURL) | grep -E '^switchyard_(requests_total|route_weight|live_color)'
              Prometheus metrics: each variant's answers by status class, latency histograms, the rollout state
          \(ctl) show stats
              the same numbers as JSON

        Ctrl-C to stop.
        """)
        fflush(nil)
        Signals.on([SIGTERM, SIGINT]) { _ in
            control.stop()
            server.shutdown()
            exit(0)
        }
        Signals.waitForever()
    }

    /// This executable's absolute path (what /proc/self/exe links to), or "switchyard".
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "switchyard" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
