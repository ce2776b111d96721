// Smooth weighted round robin over one pool's endpoints (the nginx algorithm): each pick adds
// every endpoint's weight to its score and takes the highest, so weights interleave evenly.
import Routing

struct PoolBalancer {
    private(set) var endpoints: [Endpoint]
    private var scores: [Int]

    init(_ pool: Pool) {
        endpoints = pool.endpoints
        scores = Array(repeating: 0, count: pool.endpoints.count)
    }

    /// The next endpoint, skipping draining ones and those whose bit is set in `tried`
    /// (indexes into `endpoints`, up to 64).
    mutating func next(excluding tried: UInt64) -> Int? { next(excluding: tried, where: { _ in true }) }

    /// As `next(excluding:)`, among the endpoints `eligible` accepts (health, limits).
    @inline(__always)
    mutating func next(excluding tried: UInt64, where eligible: (Endpoint) -> Bool) -> Int? {
        var best = -1
        var total = 0
        for i in endpoints.indices {
            let e = endpoints[i]
            if e.draining || e.weight <= 0 || !eligible(e) { continue }
            if i < 64 && tried & (1 << UInt64(i)) != 0 { continue }
            scores[i] += e.weight
            total += e.weight
            if best < 0 || scores[i] > scores[best] { best = i }
        }
        if best < 0 { return nil }
        scores[best] -= total
        return best
    }
}
