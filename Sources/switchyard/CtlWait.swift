// `switchyard ctl --wait[=S]` in fleet mode: after a change, asks the same instance for
// `show fleet` until every live instance's membership says it applied the change's revision,
// or the time is up; then says which instances have not.
import CommandSocket
import Foundation
import Runtime

struct CtlWait {
    let json: Bool
    /// `show fleet` now: from the instance's socket, or from etcd for `ctl --etcd`.
    let fleet: () -> ControlValue?

    init(client: ControlClient, json: Bool) {
        self.json = json
        fleet = {
            guard (try? client.send("show fleet")) != nil, let line = try? client.readLine() else { return nil }
            return ControlValue(json: line)
        }
    }

    init(json: Bool, report: @escaping () -> FleetReport) {
        self.json = json
        fleet = { (["ok": true] as ControlValue).merging(report().value) }
    }

    /// True when every live instance applied `revision` within `seconds`.
    func run(revision: Int, seconds: Double) -> Bool {
        let started = Date()
        let deadline = started.addingTimeInterval(seconds)
        var behind: [String] = []
        var count = 0
        repeat {
            guard let reply = fleet(), reply["ok"]?.bool == true, let instances = reply["instances"]?.array else {
                CLI.fail("ctl: --wait: cannot read `show fleet` (is this instance in fleet mode, and etcd reachable?)")
                return false
            }
            count = instances.count
            behind = instances.compactMap { i in
                (i["appliedRevision"]?.int ?? 0) >= revision ? nil : i["name"]?.string ?? "?"
            }
            if behind.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.005)
        } while Date() < deadline
        let ms = Int((Date().timeIntervalSince(started) * 1000).rounded())
        if json {
            let value: ControlValue = ["revision": .int(revision), "applied": .bool(behind.isEmpty), "instances": .int(count),
                                       "notApplied": ControlValue(behind), "waitedMs": .int(ms)]
            print(value.json)
        } else if behind.isEmpty {
            print("revision \(revision) applied on all \(count) instances (\(ms) ms)")
        } else {
            print("revision \(revision) not applied after \(ms) ms on: \(behind.joined(separator: ", "))")
        }
        return behind.isEmpty
    }
}
