// Which unit a request belongs to on an experiment's split, and which experiments' goals it may
// reach. A unit is the user: the id in a version-2 assignment cookie, or, with a sticky key, a
// SipHash of the key under the experiment's key (never the raw key). No allocation, no String.
import Experiments

extension RoutingTable {
    /// Sets `decision.unit` for a request on an experiment's split, after its bucket is known:
    /// the key's hash; else the cookie's unit; else a new one (stored by the Set-Cookie, with
    /// the bucket the cookie already held when it was a version-1 cookie).
    @inline(__always)
    func assignUnit<R: RoutingRequest>(_ split: TableSplit, _ request: R, _ finds: CookieFinds,
                                       random: UInt64, into decision: inout Decision) {
        let keyed = keyUnit(split, request, finds)
        if keyed != 0 {
            decision.unit = keyed
            decision.keyedUnit = true
        } else if finds.unit != 0 && finds.bucket >= 0 {
            decision.unit = finds.unit
        } else {
            let drawn = SplitMix64.draw(random, Draw.unit)
            decision.unit = drawn == 0 ? 1 : drawn
            decision.newUnit = true
            decision.setCookie = decision.bucket >= 0
        }
    }

    /// The keyed hash of the request's sticky key, or 0 when the split has none or the request
    /// does not carry it.
    @inline(__always)
    func keyUnit<R: RoutingRequest>(_ split: TableSplit, _ request: R, _ finds: CookieFinds) -> UInt64 {
        var unit: UInt64 = 0
        switch split.keyKind {
        case .header:
            _ = anyHeader(request, split.keyName) { value in
                if value.count > 0 { unit = hashUnit(split.unitKey, value) }
                return unit != 0
            }
        case .cookie:
            if finds.hasKey { unit = hashUnit(split.unitKey, finds.key) }
        case .none:
            break
        }
        return unit
    }

    /// Every goal whose method and path the request matches, attributed to the unit and variant
    /// the request has in the goal's experiment. On the experiment's own route that is the
    /// decision's; elsewhere it is read from the request (cookie or key, rules and override
    /// included) without assigning anything: a request with no unit there is not attributed.
    @inline(__always)
    func matchGoals<R: RoutingRequest>(_ request: R, method: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer,
                                       client: ClientAddress, into decision: inout Decision) {
        let routeSplit = decision.route >= 0 ? routes[decision.route].split : -1
        var g = 0
        while g < goals.count {
            let goal = goals[g]
            defer { g += 1 }
            if goal.hasPathPrefix && !path.hasBytePrefix(bytes(goal.pathPrefix)) { continue }
            if !methodAllowed(method, goal.methods) { continue }
            var unit: UInt64 = 0
            var variant: Int32 = -1
            if goal.split == routeSplit {
                unit = decision.unit
                variant = Int32(decision.variant)
            } else if let known = decision.goalHits.find(experiment: goal.experiment) {
                (unit, variant) = known
            } else {
                (unit, variant) = attribution(splits[Int(goal.split)], request, client: client)
            }
            if unit == 0 || variant < 0 { continue }
            decision.goalHits.add(experiment: goal.experiment, goal: g, unit: unit, variant: variant)
        }
    }

    /// The unit and variant a request has in `split` without being routed there; unit 0 when
    /// it has none.
    private func attribution<R: RoutingRequest>(_ split: TableSplit, _ request: R,
                                                client: ClientAddress) -> (UInt64, Int32) {
        let finds = scanCookies(split, request)
        let keyed = keyUnit(split, request, finds)
        let unit = keyed != 0 ? keyed : (finds.bucket >= 0 ? finds.unit : 0)
        guard unit != 0 else { return (0, -1) }
        let pinned = pinnedVariant(split, request, finds, client: client)
        if pinned >= 0 { return (unit, Int32(pinned)) }
        let bucket = assign(split, request, finds, random: 0).bucket
        return (unit, Int32(bucketOwner(bucket, thresholds(split))))
    }
}

/// SipHash-2-4 of a sticky key; 0 (which means "no unit") becomes 1.
@inline(__always)
func hashUnit(_ key: UnitKey, _ value: UnsafeRawBufferPointer) -> UInt64 {
    let h = SipHash.hash(key: (key.k0, key.k1), bytes: value)
    return h == 0 ? 1 : h
}
