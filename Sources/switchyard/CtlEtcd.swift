// `switchyard ctl --etcd URL --prefix P --config FILE COMMAND`: a change to a fleet's state with
// no control socket. The fleet's state is read from etcd and applied to FILE (the instances'
// config) in process; each command runs through the same command table as on a socket, so it
// is checked the same way; a change is one etcd transaction that compares the mod revisions of
// what it touches, and the reply names its revision. --wait then waits for every instance.
import CommandSocket
import Config
import Fleet
import Foundation
import Rollouts
import Routing
import Runtime

struct CtlEtcd {
    let endpoints: [String]
    let prefix: String?
    let configPath: String?
    let json: Bool
    let wait: Double?

    func run(_ commands: [String]) -> Int32 {
        guard let configPath else {
            CLI.fail("ctl: --etcd needs --config FILE: each change is checked against the instances' config before it is written")
            return 1
        }
        let loaded: ConfigLoadResult
        do { loaded = try ConfigLoader.load(path: configPath) } catch {
            CLI.fail("ctl: \(error)")
            return 1
        }
        var settings = loaded.config.fleet ?? Config.Fleet(endpoints: [], prefix: "", instance: "ctl")
        if !endpoints.isEmpty {
            var urls: [HTTPURL] = []
            for e in endpoints {
                guard let url = HTTPURL(e) else {
                    CLI.fail("ctl: --etcd \(e) is not an etcd client URL (http://HOST:PORT or https://HOST:PORT)")
                    return 1
                }
                urls.append(url)
            }
            settings.endpoints = urls
        }
        if let prefix {
            guard prefix.hasPrefix("/"), prefix.hasSuffix("/") else {
                CLI.fail("ctl: --prefix must start and end with \"/\" (like /switchyard/prod/), got \"\(prefix)\"")
                return 1
            }
            settings.prefix = prefix
        }
        guard !settings.endpoints.isEmpty, !settings.prefix.isEmpty else {
            CLI.fail("ctl: give --etcd URL and --prefix PREFIX, or a config with a \"fleet\" section")
            return 1
        }
        var config = loaded
        config.config.fleet = settings
        let state: RuntimeState
        do {
            state = try RuntimeState(loaded: config, source: .file(configPath), log: { line in
                if line.hasPrefix("fleet") { FileHandle.standardError.write(Data("ctl: \(line)\n".utf8)) }
            })
        } catch {
            CLI.fail("ctl: \(error)")
            return 1
        }
        let store = FleetStore(settings: settings, state: state, version: switchyardVersion)
        store.readInitial(timeout: 5)
        guard store.readSucceeded else {
            CLI.fail("ctl: etcd (\(settings.endpoints.map(\.authority).joined(separator: ", "))) did not answer; nothing changed")
            return 1
        }
        store.startWatching()
        defer { store.stop() }
        let engine = ControlEngine(state: state, automation: ReleaseAutomation(state: state))
        let session = engine.makeSession()
        var failed = false
        for (n, command) in commands.enumerated() {
            let done = DispatchSemaphore(value: 0)
            let reply = Locked<ControlValue?>(nil)
            state.queue.async {
                engine.execute(command, session: session) { answer in
                    reply.value = answer?.reply
                    done.signal()
                }
            }
            done.wait()
            guard let value = reply.value else { continue }
            if value["ok"]?.bool != true { failed = true }
            if json {
                print(value.json)
            } else {
                if commands.count > 1 { print("\(n > 0 ? "\n" : "")> \(command)") }
                print(ControlFormat.render(value))
            }
            if let wait, let revision = value["revision"]?.int, value["ok"]?.bool == true {
                let waiter = CtlWait(json: json, report: { store.report(listingInstances: true) })
                if !waiter.run(revision: revision, seconds: wait) { failed = true }
            }
        }
        return failed ? 1 : 0
    }
}

/// A value set by one thread and read by another once a semaphore says it is there.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
