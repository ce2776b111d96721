// An experiment on a split route: who its units are, and the goals that count as a conversion.
// The router only says which unit a request belongs to and which goals it may reach (GoalHits);
// the proxy counts and logs them, the control plane does the statistics.

/// A request that can count towards a goal: `methods` (empty: any) and `pathPrefix` (nil: any
/// path), on whichever route serves it; it converts when its status is in `statuses`.
public struct ExperimentGoal: Sendable, Equatable {
    public var name: String
    public var methods: [Bytes]
    public var pathPrefix: Bytes?
    public var statuses: ClosedRange<Int>

    public init(name: String, methods: [Bytes] = [], pathPrefix: Bytes? = nil, statuses: ClosedRange<Int> = 200...299) {
        self.name = name
        self.methods = methods
        self.pathPrefix = pathPrefix
        self.statuses = statuses
    }
}

public struct Experiment: Sendable, Equatable {
    public var name: String
    /// The SipHash key that turns a sticky key into a unit id (never the key itself, which may
    /// be personal data). The same on every instance: derived from the config, not drawn.
    public var unitKey: UnitKey
    public var goals: [ExperimentGoal]
    /// What the proxy and the control plane do with the experiment's counts; `decide` reads
    /// none of it. The exposure log's path (nil: none); whether each process's first sight of a
    /// unit is an exposure too; the control variant's index; the sample-ratio alarm.
    public var exposureLog: String?
    public var exposesFirstSightPerProcess: Bool
    public var control: Int
    public var srmThreshold: Double
    public var minUnits: Int
    /// Most goals one snapshot may hold, over every experiment (a request's hits are one mask).
    public static let maxGoals = 64

    public init(name: String, unitKey: UnitKey, goals: [ExperimentGoal] = [], exposureLog: String? = nil,
                exposesFirstSightPerProcess: Bool = false, control: Int = 0, srmThreshold: Double = 0.001,
                minUnits: Int = 100) {
        self.name = name
        self.unitKey = unitKey
        self.goals = goals
        self.exposureLog = exposureLog
        self.exposesFirstSightPerProcess = exposesFirstSightPerProcess
        self.control = control
        self.srmThreshold = srmThreshold
        self.minUnits = minUnits
    }
}

public struct UnitKey: Sendable, Equatable {
    public var k0: UInt64
    public var k1: UInt64
    public init(_ k0: UInt64, _ k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }
}

/// One experiment a request reached a goal of: the unit and the variant it is assigned to
/// there, and which of the snapshot's goals (bit i: `Snapshot.goals[i]`) its method and path
/// match. Whether it converts depends on the status, known when the exchange finishes.
public struct GoalHit: Sendable, Equatable {
    public var experiment: Int32 = -1
    public var variant: Int32 = -1
    public var unit: UInt64 = 0
    public var goals: UInt64 = 0
    public init() {}
}

/// The experiments a request reached goals of, at most `capacity`; a request matching goals of
/// more experiments than that counts for the first ones in config order.
public struct GoalHits: Sendable, Equatable {
    public static let capacity = 4
    public private(set) var count = 0
    private var h0 = GoalHit(), h1 = GoalHit(), h2 = GoalHit(), h3 = GoalHit()

    public init() {}

    public subscript(_ i: Int) -> GoalHit {
        switch i {
        case 0: h0
        case 1: h1
        case 2: h2
        default: h3
        }
    }

    /// The unit and variant already found for `experiment`, if any.
    func find(experiment: Int32) -> (UInt64, Int32)? {
        for i in 0..<count where self[i].experiment == experiment { return (self[i].unit, self[i].variant) }
        return nil
    }

    /// Adds goal `goal` of `experiment` for (unit, variant), merging with that experiment's hit.
    mutating func add(experiment: Int32, goal: Int, unit: UInt64, variant: Int32) {
        let bit = UInt64(1) << UInt64(goal & 63)
        for i in 0..<count where self[i].experiment == experiment {
            update(i) { $0.goals |= bit }
            return
        }
        guard count < Self.capacity else { return }
        var hit = GoalHit()
        hit.experiment = experiment
        hit.variant = variant
        hit.unit = unit
        hit.goals = bit
        count += 1
        update(count - 1) { $0 = hit }
    }

    private mutating func update(_ i: Int, _ body: (inout GoalHit) -> Void) {
        switch i {
        case 0: body(&h0)
        case 1: body(&h1)
        case 2: body(&h2)
        default: body(&h3)
        }
    }
}

extension Snapshot {
    /// Every goal of every experiment, in the order of `GoalHit.goals`'s bits.
    public var goals: [(experiment: Int, goal: ExperimentGoal)] { table.goalList }

    /// Per experiment (in `GoalHit.experiment` order): its route's index.
    public var experimentRoutes: [Int] { table.experimentRoutes }

    /// The experiment a route's split runs, as an index into `experimentRoutes`, or -1.
    public func experiment(route: Int) -> Int {
        guard route >= 0, route < table.routes.count else { return -1 }
        let split = table.routes[route].split
        return split >= 0 ? Int(table.splits[Int(split)].experiment) : -1
    }

    /// True when `status` converts goal `goal`.
    @inline(__always)
    public func goalConverts(_ goal: Int, status: Int) -> Bool {
        guard goal >= 0, goal < table.goals.count else { return false }
        let g = table.goals[goal]
        return status >= Int(g.statusMin) && status <= Int(g.statusMax)
    }
}
