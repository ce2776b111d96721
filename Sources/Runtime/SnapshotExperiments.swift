// A split's experiment, frozen for the router: its goals as bytes, and the key that hashes a
// sticky key into a unit id.
import Config
import Crypto
import Routing

enum SnapshotExperiments {
    /// The unit key: the first 16 bytes of HMAC-SHA256 over the experiment's name, keyed with the
    /// cookie secret when the split signs (so a unit id cannot be traced back to a key without
    /// it), else with the salt. The same on every instance that has the same config.
    static func experiment(_ experiment: Config.Experiment, sticky: Config.Sticky, variants: [Config.Variant]) -> Routing.Experiment {
        let key = sticky.secret?.bytes ?? Array(sticky.salt.utf8)
        let mac = HMACSHA256.mac(key: key, message: Array("switchyard unit\u{0}\(experiment.name)".utf8))
        var k0: UInt64 = 0
        var k1: UInt64 = 0
        for i in 0..<8 {
            k0 = k0 << 8 | UInt64(mac[i])
            k1 = k1 << 8 | UInt64(mac[8 + i])
        }
        let goals = experiment.goals.map { goal in
            Routing.ExperimentGoal(name: goal.name, methods: goal.methods.map { Array($0.utf8) },
                                   pathPrefix: goal.pathPrefix.map { Array($0.utf8) }, statuses: goal.statuses)
        }
        return Routing.Experiment(name: experiment.name, unitKey: UnitKey(k0, k1), goals: goals,
                                  exposureLog: experiment.exposureLog,
                                  exposesFirstSightPerProcess: experiment.exposures == .process,
                                  control: variants.firstIndex { $0.name == experiment.control } ?? 0,
                                  srmThreshold: experiment.srmThreshold, minUnits: experiment.minUnits)
    }
}
